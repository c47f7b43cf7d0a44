package dev.bbr.server.extproc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;
import org.junit.jupiter.api.Test;

/** Admission to the shared body budget: the reserve, oldest first, bounded waiting. */
class BodyBudgetTest {
  private static final long MIB = 1 << 20;
  private static final long SMALL = BodyBudget.SMALL_REQUEST_BYTES;

  /** Runs granted callbacks when asked, so a test sees exactly who was granted, in order. */
  private final List<Runnable> pending = new ArrayList<>();
  private final Executor executor = pending::add;
  private final List<String> granted = new ArrayList<>();

  private BodyBudget.Claim await(BodyBudget budget, String name, long bytes, long total) {
    return budget.await(bytes, total, 0, executor, () -> granted.add(name));
  }

  private List<String> runGranted() {
    List<Runnable> now = new ArrayList<>(pending);
    pending.clear();
    now.forEach(Runnable::run);
    return granted;
  }

  @Test
  void withoutWaiting_everyByteOfTheCapacityCanBeGranted() {
    BodyBudget budget = new BodyBudget(16 * MIB);
    assertThat(budget.tryAcquire(14 * MIB, 14 * MIB)).as("large, outside the reserve").isTrue();
    assertThat(budget.tryAcquire(1, SMALL + 1)).as("large, into the reserve").isFalse();
    assertThat(budget.tryAcquire(SMALL)).as("small claims may use the reserve").isTrue();
    assertThat(budget.tryAcquire(2 * MIB - SMALL + 1, SMALL)).isFalse();
    assertThat(budget.tryAcquire(2 * MIB - SMALL, SMALL)).as("all of it").isTrue();
    assertThat(budget.inUse()).isEqualTo(16 * MIB);
  }

  @Test
  void theReserve_keepsAnEighthOfTheGrantableBytesForSmallRequests() {
    BodyBudget budget = new BodyBudget(64 * MIB, Duration.ofSeconds(1));
    long allowance = 64 * MIB / 16;
    long grantable = 64 * MIB - allowance;
    long reserve = grantable / 8;
    assertThat(budget.tryAcquire(grantable - reserve, grantable - reserve)).isTrue();
    assertThat(budget.tryAcquire(1, 2 * SMALL)).as("a large request gets nothing more").isFalse();
    int small = 0;
    while (budget.tryAcquire(2048)) {
      small++;
    }
    assertThat((long) small).as("2 KiB requests served from the reserve")
        .isEqualTo(reserve / 2048);
  }

  @Test
  void couldEverHold_isWhatAnEmptyBudgetWouldGrant() {
    BodyBudget budget = new BodyBudget(64 * MIB, Duration.ofSeconds(1));
    long grantable = 64 * MIB - 64 * MIB / 16;
    long largest = grantable - grantable / 8;
    assertThat(budget.couldEverHold(largest)).isTrue();
    assertThat(budget.couldEverHold(largest + 1)).isFalse();
    assertThat(budget.couldEverHold(SMALL)).isTrue();
    // A tiny budget has no reserve and no allowance: all of it is grantable.
    BodyBudget tiny = new BodyBudget(4096, Duration.ofSeconds(1));
    assertThat(tiny.couldEverHold(4096)).isTrue();
    assertThat(tiny.tryAcquire(4096, 4096)).isTrue();
  }

  @Test
  void waitingClaims_areGrantedOldestFirst_asBytesAreReleased() {
    BodyBudget budget = new BodyBudget(4096, Duration.ofSeconds(1));
    assertThat(budget.tryAcquire(4096)).isTrue();
    BodyBudget.Claim a = await(budget, "a", 1000, 1000);
    BodyBudget.Claim b = await(budget, "b", 1000, 1000);
    BodyBudget.Claim c = await(budget, "c", 3000, 3000);
    assertThat(budget.waiting()).isEqualTo(3);
    budget.release(2000);
    assertThat(runGranted()).containsExactly("a", "b");
    assertThat(budget.settle(a)).isEqualTo(1000);
    assertThat(budget.settle(b)).isEqualTo(1000);
    assertThat(budget.waiting()).isEqualTo(1);
    budget.release(2096); // the first holder's remainder: 2096 free, c needs 3000
    assertThat(runGranted()).containsExactly("a", "b");
    budget.release(1000); // a is done
    assertThat(runGranted()).containsExactly("a", "b", "c");
    assertThat(budget.settle(c)).isEqualTo(3000);
    budget.release(1000 + 3000); // b and c
    assertThat(budget.inUse()).isZero();
  }

  @Test
  void aLargeClaim_isNeverOvertakenByALaterLargeOne_butSmallOnesStillPass() {
    BodyBudget budget = new BodyBudget(8 * MIB, Duration.ofSeconds(1));
    long grantable = 8 * MIB - 8 * MIB / 16;
    long reserve = grantable / 8;
    long large = grantable - reserve;
    assertThat(budget.tryAcquire(large - MIB, large - MIB)).isTrue();
    BodyBudget.Claim big = await(budget, "big", 2 * MIB, 2 * MIB);
    assertThat(budget.tryAcquire(MIB / 2, MIB / 2))
        .as("a later large claim that would fit waits behind the big one").isFalse();
    BodyBudget.Claim medium = await(budget, "medium", MIB / 2, MIB / 2);
    assertThat(budget.tryAcquire(2048)).as("a small request is served at once").isTrue();
    budget.release(2048);
    assertThat(runGranted()).as("medium still waits behind big").isEmpty();
    budget.release(MIB);
    assertThat(runGranted()).containsExactly("big");
    assertThat(budget.settle(big)).isEqualTo(2 * MIB);
    budget.release(2 * MIB);
    assertThat(runGranted()).containsExactly("big", "medium");
    assertThat(budget.settle(medium)).isEqualTo(MIB / 2);
    budget.release(MIB / 2);
    budget.release(large - 2 * MIB);
    assertThat(budget.inUse()).isZero();
  }

  @Test
  void aWithdrawnLargeClaim_unblocksTheOnesBehindIt() {
    BodyBudget budget = new BodyBudget(8 * MIB, Duration.ofSeconds(1));
    long grantable = 8 * MIB - 8 * MIB / 16;
    long large = grantable - grantable / 8;
    assertThat(budget.tryAcquire(large - MIB, large - MIB)).isTrue();
    BodyBudget.Claim big = await(budget, "big", 2 * MIB, 2 * MIB);
    BodyBudget.Claim medium = await(budget, "medium", MIB / 2, MIB / 2);
    assertThat(budget.settle(big)).as("withdrawn: nothing taken").isZero();
    assertThat(runGranted()).containsExactly("medium");
    assertThat(budget.settle(medium)).isEqualTo(MIB / 2);
    assertThat(budget.settle(medium)).as("settled once only").isZero();
    assertThat(budget.settle(big)).isZero();
    budget.release(MIB / 2 + large - MIB);
    assertThat(budget.inUse()).isZero();
    assertThat(budget.waiting()).isZero();
  }

  @Test
  void whatWaitingStreamsHold_isCounted_andBoundedByTheQueueAllowance() {
    BodyBudget budget = new BodyBudget(16 * MIB, Duration.ofSeconds(1));
    long allowance = MIB; // a sixteenth
    assertThat(budget.tryAcquire(12 * MIB, 12 * MIB)).isTrue();
    BodyBudget.Claim first =
        budget.await(2 * MIB, 2 * MIB, allowance / 2, executor, () -> granted.add("first"));
    assertThat(first).isNotNull();
    assertThat(budget.inUse()).isEqualTo(12 * MIB + allowance / 2);
    assertThat(budget.await(2 * MIB, 2 * MIB, allowance / 2 + 1, executor, () -> { }))
        .as("would hold more than the allowance while waiting: refused").isNull();
    assertThat(budget.waiting()).isEqualTo(1);
    assertThat(budget.settle(first)).isZero();
    assertThat(budget.inUse()).isEqualTo(12 * MIB);
  }

  @Test
  void theNumberOfWaitingStreams_isBounded() {
    BodyBudget budget = new BodyBudget(8L << 30, Duration.ofSeconds(1));
    assertThat(budget.tryAcquire(8L << 30, 8L << 30)).isFalse();
    assertThat(budget.tryAcquire(6L << 30, 6L << 30)).isTrue();
    assertThat(budget.tryAcquire(SMALL)).isTrue();
    while (budget.tryAcquire(SMALL)) {
      // take the reserve too: nothing fits now
    }
    List<BodyBudget.Claim> claims = new ArrayList<>();
    for (int i = 0; i < BodyBudget.MAX_WAITING; i++) {
      claims.add(await(budget, "w" + i, 2 * SMALL, 2 * SMALL));
    }
    assertThat(claims).doesNotContainNull();
    assertThat(await(budget, "one too many", 2 * SMALL, 2 * SMALL)).isNull();
    claims.forEach(budget::settle);
    assertThat(budget.waiting()).isZero();
  }

  @Test
  void whatWaitingStreamsMayHaveUnread_staysWithinTheCapacity_soFewerWaitInASmallBudget() {
    BodyBudget budget = new BodyBudget(64 * MIB, Duration.ofSeconds(1));
    assertThat(budget.tryAcquire(50 * MIB, 50 * MIB)).isTrue();
    List<BodyBudget.Claim> claims = new ArrayList<>();
    for (int i = 0; i < 64; i++) { // 64 MiB / the 1 MiB stream window
      claims.add(await(budget, "w" + i, 8 * MIB, 8 * MIB));
    }
    assertThat(claims).doesNotContainNull();
    assertThat(await(budget, "one too many", 8 * MIB, 8 * MIB)).isNull();
    claims.forEach(budget::settle);
  }

  @Test
  void aClaimThatFitsByTheTimeItIsQueued_isGrantedAtOnce() {
    BodyBudget budget = new BodyBudget(4096, Duration.ofSeconds(1));
    BodyBudget.Claim claim = await(budget, "late", 1000, 1000);
    assertThat(runGranted()).containsExactly("late");
    assertThat(budget.settle(claim)).isEqualTo(1000);
  }

  @Test
  void rejectsNonsense() {
    assertThatThrownBy(() -> new BodyBudget(0)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> new BodyBudget(1, Duration.ofSeconds(-1)))
        .isInstanceOf(IllegalArgumentException.class);
  }
}
