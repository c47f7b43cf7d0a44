package dev.bbr.benchmarks;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/** PNG charts for docs/benchmarks.md, drawn headless with XChart. */
final class Charts {
  private static final int WIDTH = 800;
  private static final int HEIGHT = 450;

  private Charts() {}

  /** One line per series, x on a log scale (body sizes). */
  static void lines(Path png, String title, String xTitle, String yTitle, boolean logY,
      Map<String, List<double[]>> series) throws IOException {
    XYChart chart = new XYChartBuilder().width(WIDTH).height(HEIGHT)
        .title(title).xAxisTitle(xTitle).yAxisTitle(yTitle).build();
    style(chart.getStyler());
    chart.getStyler().setXAxisLogarithmic(true);
    chart.getStyler().setYAxisLogarithmic(logY);
    chart.getStyler().setXAxisDecimalPattern("#,###");
    series.forEach((name, points) -> {
      if (points.isEmpty()) {
        return;
      }
      double[] x = points.stream().mapToDouble(p -> p[0]).toArray();
      double[] y = points.stream().mapToDouble(p -> p[1]).toArray();
      chart.addSeries(name, x, y).setMarker(SeriesMarkers.CIRCLE);
    });
    save(chart, png);
  }

  /** Grouped bars: one group per category, one bar per series. */
  static void bars(Path png, String title, String yTitle, List<String> categories,
      Map<String, List<Double>> series) throws IOException {
    CategoryChart chart = new CategoryChartBuilder().width(WIDTH).height(HEIGHT)
        .title(title).yAxisTitle(yTitle).build();
    style(chart.getStyler());
    series.forEach((name, values) -> chart.addSeries(name, categories, values));
    save(chart, png);
  }

  private static void style(Styler styler) {
    styler.setLegendPosition(Styler.LegendPosition.InsideNW);
    styler.setChartBackgroundColor(java.awt.Color.WHITE);
  }

  private static void save(org.knowm.xchart.internal.chartpart.Chart<?, ?> chart, Path png)
      throws IOException {
    Files.createDirectories(png.toAbsolutePath().getParent());
    BitmapEncoder.saveBitmap(chart, png.toString(), BitmapEncoder.BitmapFormat.PNG);
  }
}
