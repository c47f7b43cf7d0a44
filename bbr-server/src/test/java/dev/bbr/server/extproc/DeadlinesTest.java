package dev.bbr.server.extproc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class DeadlinesTest {
  private final ScheduledThreadPoolExecutor timer = new ScheduledThreadPoolExecutor(1);

  @AfterEach
  void stopTimer() {
    timer.shutdownNow();
  }

  @ParameterizedTest
  @CsvSource({"100, 10", "1000, 50", "60000, 1000", "120000, 1000", "5, 10"})
  void tick_isATwentiethOfTheTimeout_within10msAnd1s(long timeoutMillis, long tickMillis) {
    assertThat(new Deadlines(timer, Duration.ofMillis(timeoutMillis)).tickNanos())
        .isEqualTo(TimeUnit.MILLISECONDS.toNanos(tickMillis));
  }

  @Test
  void aDeadline_firesOnce_noEarlierThanItsTimeout_andWithinATickOrSoAfter() throws Exception {
    Deadlines deadlines = new Deadlines(timer, Duration.ofMillis(300));
    AtomicLong firedAt = new AtomicLong();
    AtomicInteger fired = new AtomicInteger();
    CountDownLatch done = new CountDownLatch(1);
    long start = System.nanoTime();
    deadlines.start(() -> {
      firedAt.set(System.nanoTime());
      fired.incrementAndGet();
      done.countDown();
    });

    assertThat(done.await(5, TimeUnit.SECONDS)).isTrue();
    long afterMillis = TimeUnit.NANOSECONDS.toMillis(firedAt.get() - start);
    // Never early; late by a tick (15 ms) on a quiet machine, more when a loaded one delays
    // the timer thread: the bound only catches a sweep that stopped or fires per timeout twice.
    assertThat(afterMillis).isBetween(300L, 300L + 15 + 1500);
    Thread.sleep(100);
    assertThat(fired).hasValue(1);
    assertThat(deadlines.pending()).isZero();
  }

  @Test
  void aCancelledDeadline_neverFires_whileTheOthersDo() throws Exception {
    Deadlines deadlines = new Deadlines(timer, Duration.ofMillis(100));
    AtomicInteger cancelledFired = new AtomicInteger();
    CountDownLatch kept = new CountDownLatch(1);
    Deadlines.Deadline cancelled = deadlines.start(cancelledFired::incrementAndGet);
    deadlines.start(kept::countDown);
    cancelled.cancel();

    assertThat(kept.await(5, TimeUnit.SECONDS)).isTrue();
    Thread.sleep(150);
    assertThat(cancelledFired).hasValue(0);
  }

  @Test
  void theSweep_stopsWhenNothingIsPending_andStartsAgainForTheNextDeadline() throws Exception {
    Deadlines deadlines = new Deadlines(timer, Duration.ofMillis(100));
    deadlines.start(() -> { }).cancel();
    await().atMost(Duration.ofSeconds(5)).until(() -> timer.getQueue().isEmpty()
        && timer.getActiveCount() == 0);
    Thread.sleep(50);
    assertThat(timer.getQueue()).as("no sweep scheduled while idle").isEmpty();
    long sweepsBefore = timer.getCompletedTaskCount();

    CountDownLatch fired = new CountDownLatch(1);
    deadlines.start(fired::countDown);
    assertThat(fired.await(5, TimeUnit.SECONDS)).isTrue();
    assertThat(timer.getCompletedTaskCount()).isGreaterThan(sweepsBefore);
  }

  @Test
  void aFailingAction_doesNotStopTheOthersOrLaterSweeps() throws Exception {
    Deadlines deadlines = new Deadlines(timer, Duration.ofMillis(100));
    CountDownLatch others = new CountDownLatch(2);
    deadlines.start(() -> {
      throw new IllegalStateException("expected by the test");
    });
    deadlines.start(others::countDown);
    Thread.sleep(30);
    deadlines.start(others::countDown);

    assertThat(others.await(5, TimeUnit.SECONDS)).isTrue();
    assertThat(deadlines.pending()).isZero();
  }

  @Test
  void startingAfterTheTimerStopped_keepsTheDeadline_withoutThrowing() {
    Deadlines deadlines = new Deadlines(timer, Duration.ofMillis(100));
    timer.shutdownNow();

    deadlines.start(() -> { }); // the router is stopping: nothing will sweep, nothing throws
    assertThat(deadlines.pending()).isEqualTo(1);
  }
}
