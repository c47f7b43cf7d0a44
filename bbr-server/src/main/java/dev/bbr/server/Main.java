package dev.bbr.server;

import dev.bbr.server.config.BbrOptions;
import dev.bbr.server.config.InvalidOptionsException;
import dev.bbr.server.doctor.Doctor;
import java.io.IOException;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import sun.misc.Signal;

/** Command-line entry point: parse flags, start the router, drain and exit 0 on SIGTERM. */
public final class Main {
  private Main() {}

  public static void main(String[] args) throws InterruptedException {
    if (args.length > 0 && args[0].equals("doctor")) {
      // The report is the output: no log line may interleave with it (JSON on stdout).
      System.setProperty("bbr.log.format", "TEXT");
      ((ch.qos.logback.classic.Logger) LoggerFactory.getLogger(Logger.ROOT_LOGGER_NAME))
          .setLevel(ch.qos.logback.classic.Level.OFF);
      System.exit(Doctor.run(Arrays.asList(args).subList(1, args.length), System.out, System.err));
      return;
    }
    if (Arrays.asList(args).contains("--help") || Arrays.asList(args).contains("-h")) {
      System.out.print(BbrOptions.usage());
      return;
    }
    BbrOptions options;
    try {
      options = BbrOptions.parse(args);
    } catch (InvalidOptionsException e) {
      System.err.println("bbr-server: " + e.getMessage());
      System.exit(2);
      return;
    }
    // Before the first logger is created: logback.xml picks its appender from this property.
    System.setProperty("bbr.log.format", options.jsonLogs() ? "JSON" : "TEXT");
    LogLevels.apply(options.verbosity());
    LogLevels.routeJavaUtilLogging();
    Logger logger = LoggerFactory.getLogger(Main.class);
    for (String note : BbrOptions.notes(System.getenv(), args)) {
      logger.warn("{}", note);
    }
    logger.info("routing headers: {}", options.headers());

    // SIGTERM (Kubernetes) and SIGINT (a terminal): drain, then exit 0 rather than the JVM's 143.
    // Installed before the router starts: health can turn SERVING inside BbrApp.start, and a
    // SIGTERM sent from that moment on must drain, not kill the JVM. A signal that comes before
    // BbrApp.start has returned is acted on by main once it has.
    AtomicBoolean stopRequested = new AtomicBoolean();
    AtomicReference<BbrApp> running = new AtomicReference<>();
    for (String name : List.of("TERM", "INT")) {
      Signal.handle(new Signal(name), signal -> {
        logger.info("SIG{} received: draining", name);
        stopRequested.set(true);
        BbrApp started = running.get();
        if (started != null) {
          drainAndExit(started);
        }
      });
    }
    BbrApp app;
    try {
      app = BbrApp.start(options);
    } catch (IOException | RuntimeException e) {
      logger.error("cannot start: {}", e.getMessage(), e);
      System.exit(1);
      return;
    }
    app.allowlistLoaded().exceptionally(error -> {
      logger.error("cannot load the allowlist: {}", String.valueOf(error.getCause() == null ? error : error.getCause()));
      app.close();
      System.exit(1);
      return null;
    });
    running.set(app);
    if (stopRequested.get()) {
      drainAndExit(app);
    }
    app.awaitTermination();
  }

  /** Closes the router (idempotent), waits until that close has finished, and exits 0. */
  private static void drainAndExit(BbrApp app) {
    app.close();
    try {
      app.awaitTermination(); // another thread may be the one closing it
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    System.exit(0);
  }
}
