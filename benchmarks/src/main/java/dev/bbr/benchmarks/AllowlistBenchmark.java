package dev.bbr.benchmarks;

import dev.bbr.allowlist.Allowlist;
import dev.bbr.allowlist.AllowlistBuilder;
import dev.bbr.allowlist.ConfigMapParser;
import dev.bbr.allowlist.InvalidConfigMapException;
import dev.bbr.allowlist.ModelMapping;
import io.fabric8.kubernetes.api.model.ConfigMap;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What the allowlist costs: a full relist (parse every ConfigMap, build the snapshot), a rebuild
 * from already parsed mappings, and the per-request lookup, next to the same lookups in a plain
 * {@link HashMap} measured in the same run, so results can be stated as ratios.
 *
 * <p>{@code shape} is {@code <base models>x<adapters per base model>}: {@code 100x100} is the
 * required 10,000 adapters; {@code 10x10} is a small reference. Run with {@code -prof gc} for the
 * allocation per operation ({@code gc.alloc.rate.norm}); a lookup should allocate nothing.
 */
@State(Scope.Thread)
@Fork(value = 1, jvmArgsAppend = {"-Xms1g", "-Xmx1g"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class AllowlistBenchmark {
  @Param({"100x100", "10x10"})
  String shape;

  private final ConfigMapParser parser = new ConfigMapParser();
  private List<ConfigMap> configMaps;
  private List<ModelMapping> mappings;
  private Allowlist allowlist;
  private HashMap<String, String> baseline;
  private String[] hits;
  private String[] misses;
  /** Lookups cycle through a power-of-two array so the next index is one add and one mask. */
  private int cursor;

  @Setup
  public void buildInputs() throws InvalidConfigMapException {
    String[] sizes = shape.split("x");
    int baseModels = Integer.parseInt(sizes[0]);
    int adaptersPerBase = Integer.parseInt(sizes[1]);

    configMaps = AllowlistFixtures.configMaps(baseModels, adaptersPerBase);
    mappings = AllowlistFixtures.parseAll(parser, configMaps);
    allowlist = AllowlistBuilder.build(mappings);
    baseline = new HashMap<>(allowlist.baseModelByName());
    hits = cycled(AllowlistFixtures.servedNames(baseModels, adaptersPerBase));
    misses = cycled(AllowlistFixtures.unknownNames(baseModels, adaptersPerBase));
    check(baseModels * adaptersPerBase);
  }

  /** A full relist: every ConfigMap parsed again, then the snapshot built. */
  @Benchmark
  @BenchmarkMode(Mode.AverageTime)
  @OutputTimeUnit(TimeUnit.MILLISECONDS)
  public Allowlist relist() throws InvalidConfigMapException {
    return AllowlistBuilder.build(AllowlistFixtures.parseAll(parser, configMaps));
  }

  /** A relist when the parsed mappings are cached: the builder alone. */
  @Benchmark
  @BenchmarkMode(Mode.AverageTime)
  @OutputTimeUnit(TimeUnit.MILLISECONDS)
  public Allowlist rebuildFromParsed() {
    return AllowlistBuilder.build(mappings);
  }

  /** The request path for a served name (base model or adapter). */
  @Benchmark
  @BenchmarkMode(Mode.Throughput)
  @OutputTimeUnit(TimeUnit.MICROSECONDS)
  public String lookupHit() {
    return allowlist.baseModelOf(next(hits));
  }

  /** The request path for a name that is not served. */
  @Benchmark
  @BenchmarkMode(Mode.Throughput)
  @OutputTimeUnit(TimeUnit.MICROSECONDS)
  public String lookupMiss() {
    return allowlist.baseModelOf(next(misses));
  }

  /** Baseline for {@link #lookupHit}: the same names in a plain HashMap with the same entries. */
  @Benchmark
  @BenchmarkMode(Mode.Throughput)
  @OutputTimeUnit(TimeUnit.MICROSECONDS)
  public String lookupBaselineHashMapHit() {
    return baseline.get(next(hits));
  }

  /** Baseline for {@link #lookupMiss}. */
  @Benchmark
  @BenchmarkMode(Mode.Throughput)
  @OutputTimeUnit(TimeUnit.MICROSECONDS)
  public String lookupBaselineHashMapMiss() {
    return baseline.get(next(misses));
  }

  private String next(String[] names) {
    cursor = (cursor + 1) & (names.length - 1);
    return names[cursor];
  }

  /**
   * Returns the names shuffled (so consecutive lookups land on unrelated table slots, as requests
   * do) and repeated to fill a power-of-two array.
   */
  private static String[] cycled(List<String> names) {
    List<String> shuffled = new ArrayList<>(names);
    Collections.shuffle(shuffled, new Random(42)); // fixed seed: the same order in every run
    String[] out = new String[Integer.highestOneBit(shuffled.size() - 1) << 1];
    for (int i = 0; i < out.length; i++) {
      out[i] = shuffled.get(i % shuffled.size());
    }
    return out;
  }

  /** Fails the trial rather than measure an allowlist that is not the one described. */
  private void check(int adapters) {
    if (allowlist.adapterCount() != adapters || !allowlist.conflicts().isEmpty()) {
      throw new IllegalStateException("unexpected allowlist: " + allowlist);
    }
    for (String name : hits) {
      if (allowlist.baseModelOf(name) == null || baseline.get(name) == null) {
        throw new IllegalStateException("not served: " + name);
      }
    }
    for (String name : misses) {
      if (allowlist.baseModelOf(name) != null || baseline.get(name) != null) {
        throw new IllegalStateException("unexpectedly served: " + name);
      }
    }
  }
}
