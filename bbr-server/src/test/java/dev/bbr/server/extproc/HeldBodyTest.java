package dev.bbr.server.extproc;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import dev.bbr.server.extproc.HeldBody.Cover;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class HeldBodyTest {
  private static final int KIB = 1024;
  private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();
  private final CountDownLatch granted = new CountDownLatch(1);
  private final CountDownLatch waitOver = new CountDownLatch(1);

  @AfterEach
  void stopTimer() {
    timer.shutdownNow();
  }

  private HeldBody held(BodyBudget budget, long cap) {
    return new HeldBody(budget, timer, cap, granted::countDown, waitOver::countDown);
  }

  @Test
  void fixedCharge_isTakenWhenItFits_andNothingWhenItDoesNot() {
    BodyBudget budget = new BodyBudget(100_000);
    HeldBody first = held(budget, 50_000);
    assertThat(first.chargeFixed(60_000)).isTrue();
    assertThat(held(budget, 50_000).chargeFixed(60_000)).isFalse();
    assertThat(budget.inUse()).isEqualTo(60_000);
    first.release();
    assertThat(budget.inUse()).isZero();
  }

  @Test
  void knownContentLength_reservesTheWholeBodyUpToTheCap_once() {
    BodyBudget budget = new BodyBudget(100_000);
    HeldBody held = held(budget, 50_000);
    held.expect(80_000);
    assertThat(held.cover(1_000)).isEqualTo(Cover.COVERED);
    assertThat(budget.inUse()).as("min(content-length, cap)").isEqualTo(50_000);
    assertThat(held.cover(40_000)).isEqualTo(Cover.COVERED);
    assertThat(budget.inUse()).as("within the reservation: no new charge").isEqualTo(50_000);
    held.release();
    assertThat(budget.inUse()).isZero();
  }

  @Test
  void unknownContentLength_chargesWhatIsHeld_asItGrows() {
    BodyBudget budget = new BodyBudget(100_000);
    HeldBody held = held(budget, 50_000);
    assertThat(held.chargeFixed(1_000)).isTrue();
    assertThat(held.cover(2_000)).isEqualTo(Cover.COVERED);
    assertThat(held.cover(7_000)).isEqualTo(Cover.COVERED);
    assertThat(budget.inUse()).as("fixed + held").isEqualTo(8_000);
    held.release();
    assertThat(budget.inUse()).isZero();
  }

  @Test
  void moreThanAnyBudgetCouldHold_neverFits_andTakesNothing() {
    BodyBudget budget = new BodyBudget(100_000, Duration.ofSeconds(5));
    HeldBody held = held(budget, 1 << 20);
    assertThat(held.cover(100_001)).isEqualTo(Cover.NEVER_FITS);
    assertThat(held.waiting()).isFalse();
    assertThat(budget.inUse()).isZero();
  }

  @Test
  void fullBudgetWithoutWaiting_isOverloaded_andTakesNothing() {
    BodyBudget budget = new BodyBudget(100_000);
    HeldBody hog = held(budget, 100_000);
    assertThat(hog.cover(95_000)).isEqualTo(Cover.COVERED);
    HeldBody held = held(budget, 100_000);
    assertThat(held.cover(10_000)).isEqualTo(Cover.OVERLOADED);
    assertThat(held.waiting()).isFalse();
    assertThat(budget.inUse()).isEqualTo(95_000);
  }

  @Test
  void aWait_isGrantedWhenBytesAreReleased_andSettledIntoTheLease() throws Exception {
    BodyBudget budget = new BodyBudget(1024 * KIB, Duration.ofSeconds(30));
    HeldBody hog = held(budget, 1024 * KIB);
    assertThat(hog.cover(840 * KIB)).isEqualTo(Cover.COVERED); // all but the small reserve
    HeldBody held = held(budget, 1024 * KIB);
    held.expect(200 * KIB);
    assertThat(held.cover(60 * KIB)).isEqualTo(Cover.WAITING);
    assertThat(held.waiting()).isTrue();
    assertThat(budget.waiting()).isEqualTo(1);

    hog.release();
    assertThat(granted.await(5, TimeUnit.SECONDS)).as("onGranted ran on the timer").isTrue();
    assertThat(held.settle()).isTrue();
    assertThat(held.waiting()).isFalse();
    assertThat(budget.inUse()).as("the whole body, reserved").isEqualTo(200 * KIB);
    assertThat(waitOver.await(50, TimeUnit.MILLISECONDS)).as("the wait deadline was cancelled").isFalse();
    held.release();
    assertThat(budget.inUse()).isZero();
  }

  @Test
  void aWaitNotGrantedInTime_endsWithTheWaitOverCallback_andIsWithdrawn() throws Exception {
    BodyBudget budget = new BodyBudget(1024 * KIB, Duration.ofMillis(50));
    HeldBody hog = held(budget, 1024 * KIB);
    assertThat(hog.cover(840 * KIB)).isEqualTo(Cover.COVERED); // all but the small reserve
    HeldBody held = held(budget, 1024 * KIB);
    held.expect(200 * KIB);
    assertThat(held.cover(60 * KIB)).isEqualTo(Cover.WAITING);

    assertThat(waitOver.await(5, TimeUnit.SECONDS)).isTrue();
    assertThat(held.settle()).as("withdrawn, nothing granted").isFalse();
    assertThat(budget.waiting()).isZero();
    assertThat(budget.inUse()).isEqualTo(840 * KIB);
    hog.release();
    assertThat(budget.inUse()).isZero();
  }

  @Test
  void replayedChunks_keepTheLeaseUntilFlushed_andReleaseIsExactlyOnce() {
    BodyBudget budget = new BodyBudget(100_000);
    HeldBody held = held(budget, 50_000);
    held.add(ByteString.copyFromUtf8("{\"model\":\"m\"}"));
    assertThat(held.cover(13)).isEqualTo(Cover.COVERED);
    assertThat(held.poll().toStringUtf8()).isEqualTo("{\"model\":\"m\"}");
    assertThat(held.isEmpty()).isTrue();

    held.replayed(false);
    held.bodyDone();
    assertThat(budget.inUse()).as("gRPC still holds the replayed bytes").isEqualTo(13);
    held.onFlushed();
    assertThat(budget.inUse()).isZero();
    held.onFlushed();
    held.release();
    held.release();
    assertThat(budget.inUse()).as("given back once, never twice").isZero();
    assertThat(budget.capacity() - budget.inUse()).isEqualTo(100_000);
  }

  @Test
  void replayedChunksAlreadyFlushed_endTheLeaseAtOnce() {
    BodyBudget budget = new BodyBudget(100_000);
    HeldBody held = held(budget, 50_000);
    held.add(ByteString.copyFromUtf8("abc"));
    assertThat(held.cover(3)).isEqualTo(Cover.COVERED);
    held.replayed(true);
    assertThat(budget.inUse()).isZero();
  }
}
