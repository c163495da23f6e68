"""A leader's view of its followers (replication/leader.py), on an injected clock: the high
watermark over the maximal ISR, Kafka's caught-up rule, and who leaves or joins the ISR."""

from sandbox.broker.replication.leader import LeaderState


def state(isr=(1, 2, 3), hw=0, now=0):
    return LeaderState(1, (1, 2, 3), isr, leader_epoch=4, partition_epoch=7, now_ms=now, high_watermark=hw)


def test_high_watermark_is_the_smallest_log_end_of_the_isr_and_never_goes_back():
    ls = state()
    assert not ls.advance_high_watermark(10)           # followers' ends unknown: nothing committed
    ls.follower_fetched(2, 6, 10, 100)
    assert not ls.advance_high_watermark(10)
    ls.follower_fetched(3, 4, 10, 100)
    assert ls.advance_high_watermark(10) and ls.high_watermark == 4
    ls.follower_fetched(3, 10, 10, 200)
    assert ls.advance_high_watermark(10) and ls.high_watermark == 6
    ls.follower_fetched(2, 2, 10, 300)                  # a truncated follower: the HW stays
    assert not ls.advance_high_watermark(10) and ls.high_watermark == 6


def test_a_follower_out_of_the_isr_does_not_hold_the_high_watermark_back():
    ls = state(isr=(1, 2))
    ls.follower_fetched(2, 9, 9, 0)
    assert ls.advance_high_watermark(9) and ls.high_watermark == 9
    ls.pending = (1, 2, 3)                              # 3 is being added: counted at once
    ls.follower_fetched(3, 5, 12, 0)
    ls.follower_fetched(2, 12, 12, 0)
    assert not ls.advance_high_watermark(12) and ls.high_watermark == 9
    ls.committed((1, 2), 8, 0)                          # refused after all
    assert ls.advance_high_watermark(12) and ls.high_watermark == 12


def test_caught_up_time_follows_kafkas_rule():
    ls = state(now=0)
    ls.follower_fetched(2, 5, 10, 1000)    # behind: not caught up now
    assert ls.followers[2].caught_up_ms == 0
    ls.follower_fetched(2, 10, 20, 2000)   # has what the leader had at its previous fetch
    assert ls.followers[2].caught_up_ms == 1000
    ls.follower_fetched(2, 20, 20, 3000)   # has everything
    assert ls.followers[2].caught_up_ms == 3000


def test_laggards_leave_and_caught_up_followers_join():
    ls = state(now=0)
    ls.follower_fetched(2, 10, 10, 25_000)
    assert ls.to_shrink(31_000, 30_000) == [3]          # 3 never fetched: 31 s behind
    assert ls.to_shrink(29_000, 30_000) == []
    ls.committed((1, 2), 8, 31_000)
    ls.advance_high_watermark(10)
    assert ls.high_watermark == 10
    ls.follower_fetched(3, 8, 10, 32_000)
    assert ls.to_expand(0) == []                        # below the high watermark
    ls.follower_fetched(3, 10, 10, 33_000)
    assert ls.to_expand(12) == []                       # not yet at this leader's epoch start
    assert ls.to_expand(10) == [3]
    ls.committed((1, 2, 3), 9, 33_000)
    assert ls.to_shrink(33_500, 30_000) == []           # joined just now: caught up now


def test_low_watermark_is_the_smallest_log_start_of_the_replicas_on_live_brokers():
    ls = LeaderState(1, (1, 2, 3), (1, 2, 3), 0, 0, 0, 0)
    assert ls.low_watermark(50, {1, 2, 3}) == -1          # followers that have not told theirs yet
    ls.follower_fetched(2, 100, 100, 10, log_start=50)
    ls.follower_fetched(3, 100, 100, 10, log_start=20)
    assert ls.low_watermark(50, {1, 2, 3}) == 20
    assert ls.low_watermark(50, {1, 2}) == 50             # broker 3 fenced: not waited for
    ls.follower_fetched(3, 100, 100, 20)                  # a fetch without one keeps the last known
    assert ls.low_watermark(60, {1, 2, 3}) == 20
    ls.follower_fetched(3, 100, 100, 30, log_start=60)
    assert ls.low_watermark(60, {1, 2, 3}) == 50


def test_a_follower_at_the_leader_log_end_stays_in_the_isr_after_a_stall():
    """Kafka's isCaughtUp: the leader's loop stalled (or the clock jumped) for longer than
    replica.lag.time.max.ms while nothing was written; its followers have everything."""
    ls = state(now=0)
    ls.follower_fetched(2, 10, 10, 1_000)
    ls.follower_fetched(3, 10, 10, 1_000)
    assert ls.to_shrink(60_000, 30_000, leader_leo=10) == []
    assert ls.to_shrink(60_000, 30_000, leader_leo=11) == [2, 3]   # a record they lack: time counts
