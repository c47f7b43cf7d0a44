package dev.bbr.benchmarks.envoy;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/** Medians and number formatting shared by the reports. */
final class Stats {
  private Stats() {}

  /** The median of {@code values} (the mean of the middle two for an even count); NaN if empty. */
  static double median(List<Double> values) {
    if (values.isEmpty()) {
      return Double.NaN;
    }
    double[] sorted = values.stream().mapToDouble(Double::doubleValue).toArray();
    Arrays.sort(sorted);
    int mid = sorted.length / 2;
    return sorted.length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  }

  /** {@code value} rounded to {@code decimals} places, as a JSON-friendly double. */
  static double round(double value, int decimals) {
    if (Double.isNaN(value) || Double.isInfinite(value)) {
      return value;
    }
    double scale = Math.pow(10, decimals);
    return Math.round(value * scale) / scale;
  }

  static String fmt(double value, int decimals) {
    return String.format(Locale.ROOT, "%." + decimals + "f", value);
  }

  static String signed(double value, int decimals) {
    return String.format(Locale.ROOT, "%+." + decimals + "f", value);
  }
}
