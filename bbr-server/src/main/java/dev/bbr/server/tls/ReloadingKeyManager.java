package dev.bbr.server.tls;

import java.io.IOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedKeyManager;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The key manager of the ext_proc port. Each TLS handshake reads the current identity; swapping it
 * affects only later handshakes, so open connections and their streams are never dropped.
 *
 * <p>With {@link #watch}, {@code tls.crt} and {@code tls.key} are read again every period and the
 * identity is swapped when their contents change (Kubernetes updates Secret volumes by swapping a
 * symlink, so contents are compared, not timestamps). A pair that does not parse is logged and the
 * old identity kept.
 */
public final class ReloadingKeyManager extends X509ExtendedKeyManager {
  private static final Logger logger = LoggerFactory.getLogger(ReloadingKeyManager.class);

  private static final SecureRandom RANDOM = new SecureRandom();

  private volatile Installed current;
  private volatile Installed previous;
  private byte[] lastCert = new byte[0];
  private byte[] lastKey = new byte[0];
  private ScheduledFuture<?> watcher;

  /** Creates a key manager serving {@code identity}. */
  public ReloadingKeyManager(ServerIdentity identity) {
    install(identity);
  }

  /**
   * Creates a key manager from {@code dir/tls.crt} and {@code dir/tls.key}.
   *
   * @throws IOException when the files are missing or do not hold a certificate and key
   */
  public static ReloadingKeyManager fromDirectory(Path dir) throws IOException {
    byte[] cert = Files.readAllBytes(dir.resolve("tls.crt"));
    byte[] key = Files.readAllBytes(dir.resolve("tls.key"));
    ReloadingKeyManager manager = new ReloadingKeyManager(parse(cert, key));
    manager.lastCert = cert;
    manager.lastKey = key;
    return manager;
  }

  /**
   * Re-reads {@code dir} every {@code period} on {@code executor} and swaps the identity when the
   * files change; {@code onReload} is told of each new identity.
   */
  public synchronized void watch(
      Path dir, Duration period, ScheduledExecutorService executor, Consumer<ServerIdentity> onReload) {
    watcher = executor.scheduleWithFixedDelay(
        () -> reloadIfChanged(dir, onReload), period.toMillis(), period.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** Stops watching; idempotent. */
  public synchronized void stopWatching() {
    if (watcher != null) {
      watcher.cancel(false);
      watcher = null;
    }
  }

  /** Returns the identity served to new connections. */
  public ServerIdentity identity() {
    return current.identity();
  }

  synchronized void reloadIfChanged(Path dir, Consumer<ServerIdentity> onReload) {
    byte[] cert;
    byte[] key;
    try {
      cert = Files.readAllBytes(dir.resolve("tls.crt"));
      key = Files.readAllBytes(dir.resolve("tls.key"));
    } catch (IOException e) {
      logger.warn("cannot read certificate files in {}: {}; keeping the current certificate", dir, e.toString());
      return;
    }
    if (Arrays.equals(cert, lastCert) && Arrays.equals(key, lastKey)) {
      return;
    }
    try {
      ServerIdentity next = parse(cert, key);
      install(next);
      lastCert = cert;
      lastKey = key;
      logger.info("TLS certificate reloaded from {}: {}, expires {}", dir,
          next.chain().get(0).getSubjectX500Principal().getName(), next.notAfter());
      onReload.accept(next);
    } catch (IOException | RuntimeException e) {
      // A half-written pair (certificate updated, key not yet) lands here: try again next period.
      logger.warn("certificate files in {} are not a usable pair: {}; keeping the current certificate",
          dir, e.getMessage());
    }
  }

  private static ServerIdentity parse(byte[] cert, byte[] key) throws IOException {
    return PemFiles.parse(
        new String(cert, StandardCharsets.US_ASCII), new String(key, StandardCharsets.US_ASCII));
  }

  private void install(ServerIdentity next) {
    checkKeyMatchesCertificate(next);
    Installed now = current;
    long generation = now == null ? 1 : now.generation() + 1;
    previous = now; // handshakes that chose the old alias a moment ago still find their key
    current = new Installed(generation, "bbr-" + generation, next,
        next.chain().toArray(X509Certificate[]::new));
  }

  /** Refuses a pair whose key did not sign for the leaf certificate's public key. */
  private static void checkKeyMatchesCertificate(ServerIdentity identity) {
    String algorithm = switch (identity.key().getAlgorithm()) {
      case "EC", "ECDSA" -> "SHA256withECDSA";
      case "RSA" -> "SHA256withRSA";
      case "Ed25519", "EdDSA" -> "Ed25519";
      case "Ed448" -> "Ed448";
      default -> throw new IllegalArgumentException(
          "tls.key: " + identity.key().getAlgorithm() + " key (expected: EC, RSA or EdDSA)");
    };
    try {
      byte[] probe = new byte[32];
      RANDOM.nextBytes(probe);
      Signature signer = Signature.getInstance(algorithm);
      signer.initSign(identity.key());
      signer.update(probe);
      byte[] signature = signer.sign();
      Signature verifier = Signature.getInstance(algorithm);
      verifier.initVerify(identity.chain().get(0).getPublicKey());
      verifier.update(probe);
      if (!verifier.verify(signature)) {
        throw new IllegalArgumentException("tls.key does not belong to the certificate in tls.crt");
      }
    } catch (GeneralSecurityException e) {
      throw new IllegalArgumentException(
          "tls.key does not belong to the certificate in tls.crt (" + e.getMessage() + ")", e);
    }
  }

  private Installed byAlias(String alias) {
    Installed now = current;
    if (now.alias().equals(alias)) {
      return now;
    }
    Installed before = previous;
    return before != null && before.alias().equals(alias) ? before : null;
  }

  private String aliasFor(String keyType) {
    Installed now = current;
    String algorithm = now.identity().key().getAlgorithm();
    boolean fits = keyType == null
        || keyType.equals(algorithm)
        || keyType.startsWith(algorithm + "_")
        || (keyType.equals("EC") && algorithm.equals("ECDSA"))
        || (keyType.equals("EdDSA") && algorithm.startsWith("Ed"));
    return fits ? now.alias() : null;
  }

  @Override
  public String[] getClientAliases(String keyType, Principal[] issuers) {
    return null; // a server identity only
  }

  @Override
  public String chooseClientAlias(String[] keyType, Principal[] issuers, Socket socket) {
    return null;
  }

  @Override
  public String[] getServerAliases(String keyType, Principal[] issuers) {
    String alias = aliasFor(keyType);
    return alias == null ? null : new String[] {alias};
  }

  @Override
  public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
    return aliasFor(keyType);
  }

  @Override
  public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
    return aliasFor(keyType);
  }

  @Override
  public X509Certificate[] getCertificateChain(String alias) {
    Installed installed = byAlias(alias);
    return installed == null ? null : installed.chain().clone();
  }

  @Override
  public PrivateKey getPrivateKey(String alias) {
    Installed installed = byAlias(alias);
    return installed == null ? null : installed.identity().key();
  }

  /** One loaded identity; its alias names its generation, so a handshake never mixes two. */
  private record Installed(long generation, String alias, ServerIdentity identity, X509Certificate[] chain) {}
}
