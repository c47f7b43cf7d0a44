package dev.bbr.server.testing;

import java.util.function.Supplier;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.TestWatcher;

/** Prints the tails of the processes' logs when a test fails ({@code @RegisterExtension}). */
public final class PrintLogsOnFailure implements TestWatcher {
  private final Supplier<String> logTails;

  /** @param logTails the log tails, read only after a failure */
  public PrintLogsOnFailure(Supplier<String> logTails) {
    this.logTails = logTails;
  }

  @Override
  public void testFailed(ExtensionContext context, Throwable cause) {
    System.out.println(context.getDisplayName() + " failed; log tails:");
    System.out.println(logTails.get());
  }
}
