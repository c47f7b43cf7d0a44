package dev.bbr.server.metrics;

/**
 * Where this build came from, for {@code bbr_info}.
 *
 * @param commit the git commit, or {@code unknown}
 * @param ref the version or branch, or {@code unknown}
 */
public record BuildInfo(String commit, String ref) {
  /** Reads the jar manifest's {@code Implementation-Version}; the commit is not recorded yet. */
  public static BuildInfo fromManifest() {
    String version = BuildInfo.class.getPackage().getImplementationVersion();
    return new BuildInfo("unknown", version == null ? "unknown" : version);
  }
}
