package dev.bbr.benchmarks.envoy;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * CPU time per thread group of another process, from {@code /proc/<pid>/task/<tid>/stat} (Linux):
 * where a child's CPU goes (gRPC event loops, JIT compiler, GC, Envoy's worker) without attaching a
 * profiler. Thread names are grouped with their digits replaced by {@code #}; times are in clock
 * ticks (10 ms on common kernels), so only a window of seconds gives a usable figure.
 */
final class ThreadCpu {
  private ThreadCpu() {}

  /** Ticks (user + system) per thread group, now; empty where /proc is missing. */
  static Map<String, Long> snapshot(long pid) {
    Map<String, Long> ticks = new TreeMap<>();
    try (DirectoryStream<Path> tasks = Files.newDirectoryStream(Path.of("/proc", Long.toString(pid), "task"))) {
      for (Path task : tasks) {
        try {
          String stat = Files.readString(task.resolve("stat"));
          int open = stat.indexOf('(');
          int close = stat.lastIndexOf(')');
          String name = stat.substring(open + 1, close).replaceAll("[0-9]+", "#");
          String[] f = stat.substring(close + 2).split(" ");
          // after "(comm) ": state is f[0]; utime and stime are fields 14 and 15 of stat, f[11], f[12]
          long t = Long.parseLong(f[11]) + Long.parseLong(f[12]);
          ticks.merge(name, t, Long::sum);
        } catch (IOException | RuntimeException e) {
          // the thread ended meanwhile
        }
      }
    } catch (IOException e) {
      return Map.of();
    }
    return ticks;
  }

  /** Groups by CPU used between the snapshots, largest first, as "name ticks (share%)". */
  static List<String> top(Map<String, Long> before, Map<String, Long> after, int limit) {
    Map<String, Long> delta = new LinkedHashMap<>();
    after.forEach((k, v) -> {
      long d = v - before.getOrDefault(k, 0L);
      if (d > 0) {
        delta.put(k, d);
      }
    });
    long total = delta.values().stream().mapToLong(Long::longValue).sum();
    List<String> lines = new ArrayList<>();
    delta.entrySet().stream().sorted(Map.Entry.<String, Long>comparingByValue().reversed()).limit(limit)
        .forEach(e -> lines.add(String.format(java.util.Locale.ROOT, "%s %d ticks (%.0f%%)",
            e.getKey(), e.getValue(), 100.0 * e.getValue() / Math.max(1, total))));
    return lines;
  }
}
