package dev.bbr.server;

import dev.bbr.server.config.BbrOptions;
import dev.bbr.server.config.InvalidOptionsException;
import java.io.IOException;
import java.util.Arrays;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import sun.misc.Signal;

/** Command-line entry point: parse flags, start the router, drain and exit 0 on SIGTERM. */
public final class Main {
  private Main() {}

  public static void main(String[] args) throws InterruptedException {
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
    Logger logger = LoggerFactory.getLogger(Main.class);
    List<String> ignored = BbrOptions.ignoredFlags(args);
    if (!ignored.isEmpty()) {
      logger.info("accepted for compatibility with the upstream BBR, no effect here: {}", ignored);
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
    // SIGTERM (Kubernetes) and SIGINT (a terminal): drain, then exit 0 rather than the JVM's 143.
    for (String name : List.of("TERM", "INT")) {
      Signal.handle(new Signal(name), signal -> {
        logger.info("SIG{} received: draining", name);
        app.close();
        System.exit(0);
      });
    }
    app.awaitTermination();
  }
}
