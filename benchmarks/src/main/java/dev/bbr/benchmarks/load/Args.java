package dev.bbr.benchmarks.load;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** {@code --name value} command-line options with defaults; sizes accept Ki/Mi suffixes. */
final class Args {
  private final Map<String, String> values = new HashMap<>();

  Args(String[] args, String usage) {
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      if (!arg.startsWith("--")) {
        throw new IllegalArgumentException("unexpected " + arg + "\nusage: " + usage);
      }
      int eq = arg.indexOf('=');
      if (eq > 0) {
        values.put(arg.substring(2, eq), arg.substring(eq + 1));
      } else if (i + 1 < args.length) {
        values.put(arg.substring(2), args[++i]);
      } else {
        throw new IllegalArgumentException(arg + " needs a value\nusage: " + usage);
      }
    }
  }

  String string(String name, String defaultValue) {
    return values.getOrDefault(name, defaultValue);
  }

  int integer(String name, int defaultValue) {
    return values.containsKey(name) ? (int) bytes(values.get(name)) : defaultValue;
  }

  Duration duration(String name, String defaultValue) {
    String v = string(name, defaultValue);
    return v.endsWith("ms")
        ? Duration.ofMillis(Long.parseLong(v.substring(0, v.length() - 2)))
        : Duration.ofMillis((long) (Double.parseDouble(v.replace("s", "")) * 1000));
  }

  List<String> list(String name, String defaultValue) {
    List<String> items = new ArrayList<>();
    for (String item : string(name, defaultValue).split(",")) {
      if (!item.isBlank()) {
        items.add(item.trim());
      }
    }
    return items;
  }

  /** {@code 1024}, {@code 16Ki}, {@code 1Mi}. */
  static long bytes(String v) {
    if (v.endsWith("Ki")) {
      return Long.parseLong(v.substring(0, v.length() - 2)) << 10;
    }
    if (v.endsWith("Mi")) {
      return Long.parseLong(v.substring(0, v.length() - 2)) << 20;
    }
    return Long.parseLong(v);
  }

  /** {@code 1 KiB}, {@code 256 KiB}, {@code 1 MiB}, else bytes. */
  static String size(long bytes) {
    if (bytes >= 1 << 20 && bytes % (1 << 20) == 0) {
      return (bytes >> 20) + " MiB";
    }
    if (bytes >= 1 << 10 && bytes % (1 << 10) == 0) {
      return (bytes >> 10) + " KiB";
    }
    return bytes + " B";
  }
}
