from latentviz import estimates


def test_a_promise_is_rounded_for_people():
    assert estimates.about(8.4) == "about 8 s"
    assert estimates.about(44) == "about 40 s"
    assert estimates.about(95) == "about 2 min"
    assert estimates.about(780) == "about 13 min"
    assert estimates.about(6000) == "about 1.7 h"
    assert estimates.duration(44) == "40 s"  # the same rounding in a job's time left as in a promise


def test_every_promise_is_positive_and_the_quick_runs_are_quicker_than_an_hour():
    promises = [estimates.FIRST_MAP_S, estimates.VQ_S, estimates.SAE_S, estimates.VAE_S]
    assert all(0 < seconds < 3600 for seconds in promises)
