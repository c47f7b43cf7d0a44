package dev.bbr.server;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.bridge.SLF4JBridgeHandler;

/** Maps upstream's {@code -v} levels to the router's log levels. */
final class LogLevels {
  private LogLevels() {}

  /**
   * Routes java.util.logging (grpc-java's and the JDK's loggers) to SLF4J, so their lines, stack
   * traces included, come out of logback in the configured format instead of as multi-line text
   * on stderr. logback.xml's LevelChangePropagator keeps JUL's levels in step, so disabled JUL
   * levels cost nothing.
   */
  static void routeJavaUtilLogging() {
    SLF4JBridgeHandler.removeHandlersForRootLogger();
    SLF4JBridgeHandler.install();
  }

  /**
   * 0-3: info (refused requests, lifecycle); 4: debug (one line per request); 5+: trace; below 0
   * (upstream's {@code --zap-log-level=error}): errors only.
   */
  static void apply(int verbosity) {
    Level level = verbosity >= 5 ? Level.TRACE : verbosity >= 4 ? Level.DEBUG
        : verbosity >= 0 ? Level.INFO : Level.ERROR;
    ((Logger) LoggerFactory.getLogger("dev.bbr")).setLevel(level);
  }
}
