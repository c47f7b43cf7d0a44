package dev.bbr.server;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import java.util.logging.Level;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;
import org.slf4j.bridge.SLF4JBridgeHandler;

class LogLevelsTest {
  private final Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
  private final ListAppender<ILoggingEvent> events = new ListAppender<>();

  @AfterEach
  void detach() {
    root.detachAppender(events);
    SLF4JBridgeHandler.uninstall();
  }

  @Test
  void grpcJavaUtilLogging_reachesLogback_asOneEventWithItsStackTrace() {
    events.start();
    root.addAppender(events);

    LogLevels.routeJavaUtilLogging();
    java.util.logging.Logger.getLogger("io.grpc.internal.SerializingExecutor")
        .log(Level.SEVERE, "Exception while executing runnable", new IllegalStateException("boom"));

    assertThat(events.list).singleElement().satisfies(event -> {
      assertThat(event.getLoggerName()).isEqualTo("io.grpc.internal.SerializingExecutor");
      assertThat(event.getLevel()).isEqualTo(ch.qos.logback.classic.Level.ERROR);
      assertThat(event.getThrowableProxy().getMessage()).isEqualTo("boom");
    });
    assertThat(java.util.logging.Logger.getLogger("").getHandlers())
        .as("JUL's own console handler (multi-line stderr) removed")
        .allMatch(handler -> handler instanceof SLF4JBridgeHandler);
  }
}
