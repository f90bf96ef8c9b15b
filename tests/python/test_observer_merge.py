"""amctq.Observer: shards observed in other processes, pickled back and merged, give exactly
the one-pass result; pickling round-trips; merging refuses what cannot merge."""

import pickle
import threading
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import amctq

# moving_average depends on batch order by definition and refuses to merge shards with data.
MERGEABLE = ["minmax", "percentile", "entropy", "mse", "ifmr", "hfmg", "aciq_laplace", "aciq_gaussian", "pot_diffs"]


def _batches():
    rng = np.random.default_rng(7)
    return [(rng.standard_t(3, (16, 4, 9)) * (1 + b)).astype(np.float32) for b in range(6)]


def _observe_shard(args):
    # Runs in a worker process: returns the observer pickled, as a shard would be shipped.
    kwargs, indices = args
    ob = amctq.Observer(**kwargs)
    batches = _batches()
    for i in indices:
        ob.observe(batches[i])
    return pickle.dumps(ob)


@pytest.fixture(scope="module")
def pool():
    with ProcessPoolExecutor(max_workers=2) as p:
        yield p


CASES = [dict(method=m) for m in MERGEABLE] + [dict(method="ifmr", axis=1), dict(method="entropy", axis=2, symmetric=True),
                                               dict(method="hfmg", preset="pytorch")]


@pytest.mark.parametrize("kwargs", CASES, ids=[f"{c['method']}-{c.get('axis')}-{c.get('preset', 'amct')}" for c in CASES])
def test_sharded_pickled_merged_equals_one_pass(pool, kwargs):
    one = amctq.Observer(**kwargs)
    for b in _batches():
        one.observe(b)
    shards = list(pool.map(_observe_shard, [(kwargs, [0, 3, 4]), (kwargs, [5, 1]), (kwargs, [2])]))
    merged = pickle.loads(shards[0])
    for s in shards[1:]:
        merged.merge(pickle.loads(s))
    assert merged.result() == one.result()
    assert merged.result()["batches"] == 6


def test_pickle_round_trips_and_keeps_observing():
    a = amctq.Observer("percentile", bits=6, percentile=99.9)
    b = amctq.Observer("percentile", bits=6, percentile=99.9)
    batches = _batches()
    a.observe(batches[0])
    b.observe(batches[0])
    c = pickle.loads(pickle.dumps(a))
    assert c.result() == a.result()
    c.observe(batches[1])
    b.observe(batches[1])
    assert c.result() == b.result()


def test_merge_refuses_different_methods_and_moving_average_shards():
    x = _batches()[0]
    with pytest.raises(amctq.Error, match="observers differ in method, axis or capacities"):
        amctq.Observer("mse").merge(amctq.Observer("minmax"))
    a, b = amctq.Observer("moving_average").observe(x), amctq.Observer("moving_average").observe(x)
    with pytest.raises(amctq.UnsupportedError, match="moving_average depends on batch order"):
        a.merge(b)


def test_threads_sharing_an_observer():
    # observe() runs without the GIL; the observer serialises its own calls, so threads
    # feeding one observer get the one-thread result (histogram methods do not depend on order).
    batches = _batches()
    one = amctq.Observer("hfmg")
    for b in batches:
        one.observe(b)
    shared = amctq.Observer("hfmg").observe(batches[0])
    threads = [threading.Thread(target=lambda bs=batches[1 + i::3]: [shared.observe(b) for b in bs]) for i in range(3)]
    for t in threads:
        t.start()
    for _ in range(20):  # readers alongside the writers
        assert 1 <= shared.result()["batches"] <= len(batches)
    for t in threads:
        t.join()
    assert shared.result() == one.result()


ALL_METHODS = MERGEABLE + ["moving_average"]
THREAD_CASES = ([dict(method=m) for m in ALL_METHODS] +
                [dict(method="entropy", symmetric=True), dict(method="entropy", preset="onnxruntime"),
                 dict(method="percentile", preset="onnxruntime"), dict(method="hfmg", preset="pytorch"),
                 dict(method="ifmr", axis=1)])


@pytest.fixture(scope="module")
def large():
    # Past the size a batch is split at (4M values), not a multiple of any part count, with
    # a heavy tail so that later parts hold new extremes.
    rng = np.random.default_rng(3)
    x = rng.standard_t(3, (1 << 22) + 4099).astype(np.float32)
    x[-5:] = [40.0, -55.0, 61.0, 0.0, -0.0]
    return x


@pytest.mark.parametrize("kwargs", THREAD_CASES, ids=[f"{c['method']}-{c.get('preset', 'amct')}-{c.get('symmetric', False)}-{c.get('axis')}" for c in THREAD_CASES])
def test_threads_give_the_one_thread_state(large, kwargs):
    small = np.linspace(-3, 2, 1000, dtype=np.float32)
    obs = {}
    for t in (1, 2, 3, 0):
        ob = amctq.Observer(threads=t, **kwargs)
        if kwargs.get("preset") != "onnxruntime":  # (ORT's histogram widened 20x would take minutes to search)
            ob.observe(small if kwargs.get("axis") is None else small.reshape(-1, 1))
        ob.observe(large if kwargs.get("axis") is None else large.reshape(-1, 1))  # per-channel: not split
        obs[t] = ob
    for t in (2, 3, 0):
        assert obs[t]._core.state() == obs[1]._core.state()
        assert obs[t].result() == obs[1].result()


def test_threads_report_and_skip_nonfinite_as_one_thread(large):
    x = large.copy()
    x[[5, 3_000_000, 4_000_000]] = [np.nan, np.inf, np.nan]
    messages = []
    for t in (1, 3):
        ob = amctq.Observer("entropy", threads=t)
        with pytest.raises(amctq.Error) as e:
            ob.observe(x)
        messages.append(str(e.value))
        with pytest.raises(amctq.Error, match="no data to calibrate"):
            ob.result()  # the rejected batch left nothing behind
    assert messages[0] == messages[1] and "has 3 NaN/Inf" in messages[0]
    one, three = (amctq.Observer("percentile", threads=t, skip_nonfinite=True).observe(x) for t in (1, 3))
    assert three._core.state() == one._core.state()
    assert three.result() == one.result() and one.result()["nonfinite"] == 3


def test_threads_must_not_be_negative():
    with pytest.raises(amctq.Error, match="threads must be >= 0"):
        amctq.Observer("entropy", threads=-1)
