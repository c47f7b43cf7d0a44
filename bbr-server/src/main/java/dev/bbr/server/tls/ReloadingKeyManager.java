package dev.bbr.server.tls;

import java.io.IOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
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
  private static final char[] NO_PASSWORD = new char[0];

  private volatile X509ExtendedKeyManager current;
  private volatile ServerIdentity identity;
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
    return identity;
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
      logger.warn("certificate files in {} do not parse: {}; keeping the current certificate", dir, e.getMessage());
    }
  }

  private static ServerIdentity parse(byte[] cert, byte[] key) throws IOException {
    return PemFiles.parse(
        new String(cert, StandardCharsets.US_ASCII), new String(key, StandardCharsets.US_ASCII));
  }

  private void install(ServerIdentity next) {
    try {
      KeyStore store = KeyStore.getInstance("PKCS12");
      store.load(null, null);
      store.setKeyEntry("bbr", next.key(), NO_PASSWORD, next.chain().toArray(X509Certificate[]::new));
      KeyManagerFactory factory = KeyManagerFactory.getInstance("NewSunX509");
      factory.init(store, NO_PASSWORD);
      for (KeyManager km : factory.getKeyManagers()) {
        if (km instanceof X509ExtendedKeyManager extended) {
          current = extended;
          identity = next;
          return;
        }
      }
      throw new IllegalStateException("the JDK offers no X509ExtendedKeyManager");
    } catch (GeneralSecurityException | IOException e) {
      throw new IllegalArgumentException("the key does not match the certificate: " + e.getMessage(), e);
    }
  }

  @Override
  public String[] getClientAliases(String keyType, Principal[] issuers) {
    return current.getClientAliases(keyType, issuers);
  }

  @Override
  public String chooseClientAlias(String[] keyType, Principal[] issuers, Socket socket) {
    return current.chooseClientAlias(keyType, issuers, socket);
  }

  @Override
  public String[] getServerAliases(String keyType, Principal[] issuers) {
    return current.getServerAliases(keyType, issuers);
  }

  @Override
  public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
    return current.chooseServerAlias(keyType, issuers, socket);
  }

  @Override
  public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
    return current.chooseEngineServerAlias(keyType, issuers, engine);
  }

  @Override
  public X509Certificate[] getCertificateChain(String alias) {
    return current.getCertificateChain(alias);
  }

  @Override
  public PrivateKey getPrivateKey(String alias) {
    return current.getPrivateKey(alias);
  }
}
