package dev.bbr.server.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.StringWriter;
import java.math.BigInteger;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.KeyManager;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Certificate files in the forms Kubernetes and cert-manager write, and reloading them without
 * dropping connections. Reloads are driven through {@code reloadIfChanged}, not the timer.
 */
class ReloadingKeyManagerTest {
  private static final String SAN_DNS = "localhost";
  private static final String SAN_IP = "127.0.0.1";
  private static final int DNS_NAME = 2;
  private static final int IP_ADDRESS = 7;

  @TempDir Path dir;

  private final List<ServerIdentity> reloads = new CopyOnWriteArrayList<>();
  private final List<AutoCloseable> toClose = new ArrayList<>();

  @AfterEach
  void closeAll() throws Exception {
    for (int i = toClose.size() - 1; i >= 0; i--) {
      toClose.get(i).close();
    }
  }

  // ---- certificates and PEM files ----

  /** A key pair and a self-signed certificate for it. */
  private record Pair(KeyPair keys, X509Certificate certificate) {}

  private static Pair selfSigned(String algorithm, String commonName) throws Exception {
    return selfSigned(KeyPairGenerator.getInstance(algorithm), commonName);
  }

  /**
   * An EC pair whose SEC 1 encoding carries the optional public key, as OpenSSL and Go's
   * {@code x509.MarshalECPrivateKey} (so cert-manager) write it; the JDK's own EC keys leave it out.
   */
  private static Pair selfSignedEcWithPublicKeyInSec1(String commonName) throws Exception {
    return selfSigned(KeyPairGenerator.getInstance("EC", new BouncyCastleProvider()), commonName);
  }

  private static Pair selfSigned(KeyPairGenerator generator, String commonName) throws Exception {
    String algorithm = generator.getAlgorithm();
    if (algorithm.equals("EC")) {
      generator.initialize(new ECGenParameterSpec("secp256r1"));
    } else {
      generator.initialize(2048);
    }
    KeyPair keys = generator.generateKeyPair();
    X500Name subject = new X500Name("CN=" + commonName);
    Instant now = Instant.now();
    JcaX509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(
        subject, new BigInteger(64, new SecureRandom()),
        Date.from(now.minus(Duration.ofHours(1))), Date.from(now.plus(Duration.ofDays(1))),
        subject, keys.getPublic());
    String signature = algorithm.equals("EC") ? "SHA256withECDSA" : "SHA256withRSA";
    X509Certificate certificate = new JcaX509CertificateConverter()
        .getCertificate(builder.build(new JcaContentSignerBuilder(signature).build(keys.getPrivate())));
    return new Pair(keys, certificate);
  }

  /** A leaf certificate for a new EC key, signed by {@code issuer}. */
  private static Pair issuedBy(Pair issuer, String commonName) throws Exception {
    KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
    generator.initialize(new ECGenParameterSpec("secp256r1"));
    KeyPair keys = generator.generateKeyPair();
    Instant now = Instant.now();
    JcaX509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(
        issuer.certificate(), new BigInteger(64, new SecureRandom()),
        Date.from(now.minus(Duration.ofHours(1))), Date.from(now.plus(Duration.ofDays(1))),
        new X500Name("CN=" + commonName), keys.getPublic());
    X509Certificate certificate = new JcaX509CertificateConverter().getCertificate(
        builder.build(new JcaContentSignerBuilder("SHA256withECDSA").build(issuer.keys().getPrivate())));
    return new Pair(keys, certificate);
  }

  private static String pem(Object... objects) throws IOException {
    StringWriter out = new StringWriter();
    try (JcaPEMWriter writer = new JcaPEMWriter(out)) {
      for (Object o : objects) {
        writer.writeObject(o);
      }
    }
    return out.toString();
  }

  /** Writes the certificate and the key in PKCS#8 ({@code PRIVATE KEY}), as cert-manager does. */
  private void writePkcs8(Pair pair) throws IOException {
    String key = pem(new JcaPKCS8Generator(pair.keys().getPrivate(), null));
    assertThat(key).startsWith("-----BEGIN PRIVATE KEY-----");
    write(pem(pair.certificate()), key);
  }

  /** Writes the certificate and the key in its traditional form: PKCS#1 for RSA, SEC 1 for EC. */
  private void writeTraditional(Pair pair) throws IOException {
    String key = pem(pair.keys());
    assertThat(key).startsWith(pair.keys().getPrivate().getAlgorithm().equals("RSA")
        ? "-----BEGIN RSA PRIVATE KEY-----" : "-----BEGIN EC PRIVATE KEY-----");
    write(pem(pair.certificate()), key);
  }

  private void writePkcs8(ServerIdentity identity) throws IOException {
    write(pem(identity.chain().get(0)), pem(new JcaPKCS8Generator(identity.key(), null)));
  }

  private void write(String certificatePem, String keyPem) throws IOException {
    Files.writeString(dir.resolve("tls.crt"), certificatePem, StandardCharsets.US_ASCII);
    Files.writeString(dir.resolve("tls.key"), keyPem, StandardCharsets.US_ASCII);
  }

  private static X509Certificate servedCertificate(ReloadingKeyManager manager, String keyType) {
    String alias = manager.chooseEngineServerAlias(keyType, null, null);
    assertThat(alias).as("alias for " + keyType).isNotNull();
    return manager.getCertificateChain(alias)[0];
  }

  // ---- the self-signed certificate ----

  @Test
  void reload_keepsTheOldIdentity_whenOnlyTheCertificateChanged() throws Exception {
    Pair first = selfSigned("EC", "first");
    writePkcs8(first);
    ReloadingKeyManager manager = ReloadingKeyManager.fromDirectory(dir);
    Pair second = selfSigned("EC", "second");
    Files.writeString(dir.resolve("tls.crt"), pem(second.certificate()), StandardCharsets.US_ASCII);

    manager.reloadIfChanged(dir, reloads::add);
    assertThat(reloads).isEmpty();
    assertThat(servedCertificate(manager, "EC")).isEqualTo(first.certificate());

    Files.writeString(dir.resolve("tls.key"),
        pem(new JcaPKCS8Generator(second.keys().getPrivate(), null)), StandardCharsets.US_ASCII);
    manager.reloadIfChanged(dir, reloads::add);
    assertThat(reloads).hasSize(1);
    assertThat(servedCertificate(manager, "EC")).isEqualTo(second.certificate());
  }

  @Test
  void constructor_refusesAKeyOfAnotherCertificate_evenOfTheSameAlgorithm() throws Exception {
    Pair one = selfSigned("RSA", "one");
    Pair other = selfSigned("RSA", "other");
    assertThatThrownBy(() -> new ReloadingKeyManager(
        new ServerIdentity(other.keys().getPrivate(), List.of(one.certificate()))))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("does not belong to the certificate");
  }

  @Test
  void fromDirectory_readsAnEcKeyWrittenWithoutItsOptionalPublicKey() throws Exception {
    Pair pair = selfSigned("EC", "no-public-key");
    // SEC 1 without the optional public key, as `openssl ec -no_public` writes it.
    java.math.BigInteger d = ((java.security.interfaces.ECPrivateKey) pair.keys().getPrivate()).getS();
    byte[] der = new org.bouncycastle.asn1.sec.ECPrivateKey(
        256, d, org.bouncycastle.asn1.sec.SECObjectIdentifiers.secp256r1).getEncoded();
    StringWriter out = new StringWriter();
    try (org.bouncycastle.util.io.pem.PemWriter writer = new org.bouncycastle.util.io.pem.PemWriter(out)) {
      writer.writeObject(new org.bouncycastle.util.io.pem.PemObject("EC PRIVATE KEY", der));
    }
    String key = out.toString();
    write(pem(pair.certificate()), key);
    assertThat(servedCertificate(ReloadingKeyManager.fromDirectory(dir), "EC"))
        .isEqualTo(pair.certificate());
  }

  @Test
  void handshakeThatChoseTheOldAlias_stillGetsTheMatchingKey_afterAReload() throws Exception {
    Pair first = selfSigned("EC", "first");
    writePkcs8(first);
    ReloadingKeyManager manager = ReloadingKeyManager.fromDirectory(dir);
    String chosenBefore = manager.chooseEngineServerAlias("EC", null, null);
    writePkcs8(selfSigned("EC", "second"));
    manager.reloadIfChanged(dir, reloads::add);
    assertThat(manager.getCertificateChain(chosenBefore)[0]).isEqualTo(first.certificate());
    assertThat(manager.getPrivateKey(chosenBefore)).isEqualTo(first.keys().getPrivate());
  }


  @Test
  void selfSigned_coversLocalhostAndLoopback_andIsValidNow() throws Exception {
    ServerIdentity identity = SelfSignedCertificates.create();
    X509Certificate certificate = identity.chain().get(0);

    certificate.checkValidity();
    certificate.verify(certificate.getPublicKey());
    assertThat(certificate.getSubjectAlternativeNames())
        .contains(List.of(DNS_NAME, SAN_DNS), List.of(IP_ADDRESS, SAN_IP));
    assertThat(identity.notAfter()).isAfter(Instant.now().plus(Duration.ofDays(365)));
    assertThat(certificate.getNotBefore().toInstant()).isBefore(Instant.now());
    assertThat(certificate.getBasicConstraints()).as("not a CA").isEqualTo(-1);
    assertThat(certificate.getExtendedKeyUsage()).contains("1.3.6.1.5.5.7.3.1"); // serverAuth
    assertThat(identity.key().getAlgorithm()).isEqualTo("EC");
    assertThat(certificate.getPublicKey().getAlgorithm()).isEqualTo("EC");
  }

  @Test
  void selfSigned_isNewEveryTime() {
    ServerIdentity first = SelfSignedCertificates.create();
    ServerIdentity second = SelfSignedCertificates.create();

    assertThat(second.chain().get(0).getSerialNumber()).isNotEqualTo(first.chain().get(0).getSerialNumber());
    assertThat(second.key()).isNotEqualTo(first.key());
  }

  @Test
  void serverIdentity_refusesAnEmptyChain() {
    ServerIdentity any = SelfSignedCertificates.create();

    assertThatThrownBy(() -> new ServerIdentity(any.key(), List.of()))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("chain");
  }

  // ---- serving one identity ----

  @Test
  void keyManager_servesTheIdentityItWasGiven() {
    ServerIdentity identity = SelfSignedCertificates.create();
    ReloadingKeyManager manager = new ReloadingKeyManager(identity);

    String alias = manager.chooseEngineServerAlias("EC", null, null);

    assertThat(manager.identity()).isSameAs(identity);
    assertThat(manager.getCertificateChain(alias)).containsExactly(identity.chain().get(0));
    assertThat(manager.getPrivateKey(alias)).isEqualTo(identity.key());
    assertThat(manager.chooseServerAlias("EC", null, null)).isNotNull();
    assertThat(manager.getServerAliases("EC", null)).isNotEmpty();
    assertThat(manager.chooseEngineServerAlias("RSA", null, null)).as("no RSA key").isNull();
  }

  // ---- reading the files ----

  @Test
  void fromDirectory_readsAPkcs8EcKey() throws Exception {
    Pair pair = selfSigned("EC", "pkcs8-ec");
    writePkcs8(pair);

    ReloadingKeyManager manager = ReloadingKeyManager.fromDirectory(dir);

    assertThat(manager.identity().chain()).containsExactly(pair.certificate());
    assertThat(manager.identity().key().getEncoded()).isEqualTo(pair.keys().getPrivate().getEncoded());
    assertThat(servedCertificate(manager, "EC")).isEqualTo(pair.certificate());
  }

  @Test
  void fromDirectory_readsAPkcs8RsaKey() throws Exception {
    Pair pair = selfSigned("RSA", "pkcs8-rsa");
    writePkcs8(pair);

    ReloadingKeyManager manager = ReloadingKeyManager.fromDirectory(dir);

    assertThat(servedCertificate(manager, "RSA")).isEqualTo(pair.certificate());
  }

  @Test
  void fromDirectory_readsAPkcs1RsaKey() throws Exception {
    Pair pair = selfSigned("RSA", "pkcs1-rsa");
    writeTraditional(pair);
    assertThat(Files.readString(dir.resolve("tls.key"))).startsWith("-----BEGIN RSA PRIVATE KEY-----");

    ReloadingKeyManager manager = ReloadingKeyManager.fromDirectory(dir);

    assertThat(manager.identity().key().getAlgorithm()).isEqualTo("RSA");
    assertThat(manager.identity().key().getEncoded()).isEqualTo(pair.keys().getPrivate().getEncoded());
    assertThat(servedCertificate(manager, "RSA")).isEqualTo(pair.certificate());
    assertThat(manager.chooseEngineServerAlias("EC", null, null)).as("no EC key").isNull();
  }

  @Test
  void fromDirectory_readsASec1EcKey() throws Exception {
    Pair pair = selfSignedEcWithPublicKeyInSec1("sec1-ec");
    writeTraditional(pair);
    try (PEMParser parser = new PEMParser(Files.newBufferedReader(dir.resolve("tls.key")))) {
      assertThat(((PEMKeyPair) parser.readObject()).getPublicKeyInfo()).as("public key in SEC 1").isNotNull();
    }

    ReloadingKeyManager manager = ReloadingKeyManager.fromDirectory(dir);

    assertThat(manager.identity().key().getAlgorithm()).isEqualTo("EC");
    assertThat(servedCertificate(manager, "EC")).isEqualTo(pair.certificate());
  }

  @Test
  void fromDirectory_keepsTheWholeChain_leafFirst() throws Exception {
    Pair intermediate = selfSigned("EC", "intermediate");
    Pair leaf = issuedBy(intermediate, "leaf");
    write(pem(leaf.certificate(), intermediate.certificate()),
        pem(new JcaPKCS8Generator(leaf.keys().getPrivate(), null)));

    ReloadingKeyManager manager = ReloadingKeyManager.fromDirectory(dir);

    assertThat(manager.identity().chain()).containsExactly(leaf.certificate(), intermediate.certificate());
    String alias = manager.chooseEngineServerAlias("EC", null, null);
    assertThat(manager.getCertificateChain(alias))
        .containsExactly(leaf.certificate(), intermediate.certificate());
  }

  @Test
  void fromDirectory_fails_whenAFileIsMissing() throws Exception {
    Pair pair = selfSigned("EC", "only-cert");
    Files.writeString(dir.resolve("tls.crt"), pem(pair.certificate()));

    assertThatThrownBy(() -> ReloadingKeyManager.fromDirectory(dir))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("tls.key");
  }

  @Test
  void fromDirectory_fails_whenTheFilesHoldNoKeyOrNoCertificate() throws Exception {
    Pair pair = selfSigned("EC", "swapped");
    String key = pem(new JcaPKCS8Generator(pair.keys().getPrivate(), null));
    write(pem(pair.certificate()), pem(pair.certificate()));
    assertThatThrownBy(() -> ReloadingKeyManager.fromDirectory(dir))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("tls.key");

    write(key, key);
    assertThatThrownBy(() -> ReloadingKeyManager.fromDirectory(dir))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("tls.crt");

    write("", "");
    assertThatThrownBy(() -> ReloadingKeyManager.fromDirectory(dir)).isInstanceOf(IOException.class);
  }

  // ---- reloading ----

  @Test
  void reload_swapsTheIdentity_andTellsTheConsumerOnce_whenTheFilesChange() throws Exception {
    ServerIdentity first = SelfSignedCertificates.create();
    ServerIdentity second = SelfSignedCertificates.create();
    writePkcs8(first);
    ReloadingKeyManager manager = ReloadingKeyManager.fromDirectory(dir);
    assertThat(servedCertificate(manager, "EC")).isEqualTo(first.chain().get(0));

    writePkcs8(second);
    manager.reloadIfChanged(dir, reloads::add);

    assertThat(servedCertificate(manager, "EC")).isEqualTo(second.chain().get(0));
    assertThat(manager.getPrivateKey(manager.chooseEngineServerAlias("EC", null, null)).getEncoded())
        .isEqualTo(second.key().getEncoded());
    assertThat(manager.identity().chain()).containsExactly(second.chain().get(0));
    assertThat(reloads).hasSize(1);
    assertThat(reloads.get(0).chain()).containsExactly(second.chain().get(0));

    manager.reloadIfChanged(dir, reloads::add);
    assertThat(reloads).as("no second reload for the same files").hasSize(1);
  }

  @Test
  void reload_doesNothing_whenTheFilesAreUnchanged() throws Exception {
    writePkcs8(SelfSignedCertificates.create());
    ReloadingKeyManager manager = ReloadingKeyManager.fromDirectory(dir);
    ServerIdentity loaded = manager.identity();

    manager.reloadIfChanged(dir, reloads::add);
    // Rewriting the same bytes (a new mtime) is not a change either.
    Files.write(dir.resolve("tls.crt"), Files.readAllBytes(dir.resolve("tls.crt")));
    manager.reloadIfChanged(dir, reloads::add);

    assertThat(reloads).isEmpty();
    assertThat(manager.identity()).isSameAs(loaded);
  }

  @Test
  void reload_readsTheFiles_whenStartedFromAnIdentity() throws Exception {
    // A manager made from an identity has no file contents yet: the first look always loads.
    ServerIdentity initial = SelfSignedCertificates.create();
    ServerIdentity onDisk = SelfSignedCertificates.create();
    writePkcs8(onDisk);
    ReloadingKeyManager manager = new ReloadingKeyManager(initial);

    manager.reloadIfChanged(dir, reloads::add);

    assertThat(reloads).hasSize(1);
    assertThat(servedCertificate(manager, "EC")).isEqualTo(onDisk.chain().get(0));
  }

  @Test
  void reload_keepsTheOldIdentity_whenTheKeyIsGarbage_andLoadsOnceItIsFixed() throws Exception {
    ServerIdentity first = SelfSignedCertificates.create();
    ServerIdentity second = SelfSignedCertificates.create();
    writePkcs8(first);
    ReloadingKeyManager manager = ReloadingKeyManager.fromDirectory(dir);

    write(pem(second.chain().get(0)), "this is not a key\n");
    manager.reloadIfChanged(dir, reloads::add);

    assertThat(reloads).isEmpty();
    assertThat(manager.identity().chain()).containsExactly(first.chain().get(0));
    assertThat(servedCertificate(manager, "EC")).isEqualTo(first.chain().get(0));

    writePkcs8(second);
    manager.reloadIfChanged(dir, reloads::add);

    assertThat(reloads).hasSize(1);
    assertThat(servedCertificate(manager, "EC")).isEqualTo(second.chain().get(0));
  }

  @Test
  void reload_keepsTheOldIdentity_whenTheKeyIsHalfWritten() throws Exception {
    Pair first = selfSigned("RSA", "first");
    Pair second = selfSigned("RSA", "second");
    writeTraditional(first);
    ReloadingKeyManager manager = ReloadingKeyManager.fromDirectory(dir);

    String key = pem(second.keys());
    write(pem(second.certificate()), key.substring(0, key.length() / 2));
    manager.reloadIfChanged(dir, reloads::add);

    assertThat(reloads).isEmpty();
    assertThat(servedCertificate(manager, "RSA")).isEqualTo(first.certificate());

    writeTraditional(second);
    manager.reloadIfChanged(dir, reloads::add);

    assertThat(reloads).hasSize(1);
    assertThat(servedCertificate(manager, "RSA")).isEqualTo(second.certificate());
  }

  @Test
  void reload_keepsTheOldIdentity_whenTheCertificateIsGarbage() throws Exception {
    ServerIdentity first = SelfSignedCertificates.create();
    writePkcs8(first);
    ReloadingKeyManager manager = ReloadingKeyManager.fromDirectory(dir);

    Files.writeString(dir.resolve("tls.crt"),
        "-----BEGIN CERTIFICATE-----\nAAAAAAAAAAAAAAAA\n-----END CERTIFICATE-----\n");
    manager.reloadIfChanged(dir, reloads::add);

    assertThat(reloads).isEmpty();
    assertThat(servedCertificate(manager, "EC")).isEqualTo(first.chain().get(0));
  }

  @Test
  void reload_keepsTheOldIdentity_whenTheFilesDisappear() throws Exception {
    ServerIdentity first = SelfSignedCertificates.create();
    writePkcs8(first);
    ReloadingKeyManager manager = ReloadingKeyManager.fromDirectory(dir);

    Files.delete(dir.resolve("tls.key"));
    manager.reloadIfChanged(dir, reloads::add);

    assertThat(reloads).isEmpty();
    assertThat(servedCertificate(manager, "EC")).isEqualTo(first.chain().get(0));
  }

  @Test
  void reload_switchesKeyAlgorithm_fromEcToRsa() throws Exception {
    writePkcs8(SelfSignedCertificates.create());
    ReloadingKeyManager manager = ReloadingKeyManager.fromDirectory(dir);
    Pair rsa = selfSigned("RSA", "now-rsa");

    writeTraditional(rsa);
    manager.reloadIfChanged(dir, reloads::add);

    assertThat(reloads).hasSize(1);
    assertThat(servedCertificate(manager, "RSA")).isEqualTo(rsa.certificate());
    assertThat(manager.chooseEngineServerAlias("EC", null, null)).isNull();
  }

  @Test
  void reload_followsAKubernetesSecretVolume_whenItsDataSymlinkIsSwapped() throws Exception {
    // kubelet writes a new timestamped directory, then renames a new ..data symlink over the old one.
    Path mount = Files.createDirectory(dir.resolve("mount"));
    ServerIdentity first = SelfSignedCertificates.create();
    ServerIdentity second = SelfSignedCertificates.create();
    Path v1 = Files.createDirectory(mount.resolve("..2024_01_01_00_00_00.1"));
    Path v2 = Files.createDirectory(mount.resolve("..2024_06_01_00_00_00.2"));
    Files.writeString(v1.resolve("tls.crt"), pem(first.chain().get(0)));
    Files.writeString(v1.resolve("tls.key"), pem(new JcaPKCS8Generator(first.key(), null)));
    Files.writeString(v2.resolve("tls.crt"), pem(second.chain().get(0)));
    Files.writeString(v2.resolve("tls.key"), pem(new JcaPKCS8Generator(second.key(), null)));
    Files.createSymbolicLink(mount.resolve("..data"), v1.getFileName());
    Files.createSymbolicLink(mount.resolve("tls.crt"), Path.of("..data/tls.crt"));
    Files.createSymbolicLink(mount.resolve("tls.key"), Path.of("..data/tls.key"));
    ReloadingKeyManager manager = ReloadingKeyManager.fromDirectory(mount);
    assertThat(servedCertificate(manager, "EC")).isEqualTo(first.chain().get(0));

    Files.createSymbolicLink(mount.resolve("..data_tmp"), v2.getFileName());
    Files.move(mount.resolve("..data_tmp"), mount.resolve("..data"), StandardCopyOption.ATOMIC_MOVE);
    manager.reloadIfChanged(mount, reloads::add);

    assertThat(reloads).hasSize(1);
    assertThat(servedCertificate(manager, "EC")).isEqualTo(second.chain().get(0));
  }

  @Test
  void watch_reloadsOnItsOwn_untilStopped() throws Exception {
    writePkcs8(SelfSignedCertificates.create());
    ReloadingKeyManager manager = ReloadingKeyManager.fromDirectory(dir);
    ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();
    toClose.add(timer::shutdownNow);
    CountDownLatch reloaded = new CountDownLatch(1);
    ServerIdentity next = SelfSignedCertificates.create();
    // Both files are complete before the watcher first looks, so it cannot see a mixed pair.
    writePkcs8(next);

    manager.watch(dir, Duration.ofMillis(20), timer, identity -> {
      reloads.add(identity);
      reloaded.countDown();
    });

    assertThat(reloaded.await(30, TimeUnit.SECONDS)).as("reloaded by the watcher").isTrue();
    assertThat(servedCertificate(manager, "EC")).isEqualTo(next.chain().get(0));
    manager.stopWatching();
    manager.stopWatching();
    timer.shutdown();
    assertThat(timer.awaitTermination(30, TimeUnit.SECONDS)).isTrue();
    assertThat(reloads).hasSize(1);
  }

  // ---- real handshakes ----

  /** A TLS echo server on loopback whose key manager is the one under test. */
  private final class EchoServer implements AutoCloseable {
    private final SSLServerSocket serverSocket;
    private final ExecutorService threads = Executors.newCachedThreadPool();

    EchoServer(ReloadingKeyManager keyManager) throws Exception {
      SSLContext context = SSLContext.getInstance("TLS");
      context.init(new KeyManager[] {keyManager}, null, null);
      serverSocket = (SSLServerSocket) context.getServerSocketFactory()
          .createServerSocket(0, 50, InetAddress.getLoopbackAddress());
      threads.execute(this::acceptLoop);
    }

    int port() {
      return serverSocket.getLocalPort();
    }

    private void acceptLoop() {
      while (!serverSocket.isClosed()) {
        try {
          Socket socket = serverSocket.accept();
          threads.execute(() -> echo(socket));
        } catch (IOException e) {
          return; // closed
        }
      }
    }

    private static void echo(Socket socket) {
      try (socket; InputStream in = socket.getInputStream(); OutputStream out = socket.getOutputStream()) {
        for (int b = in.read(); b >= 0; b = in.read()) {
          out.write(b);
          out.flush();
        }
      } catch (IOException ignored) {
        // client went away
      }
    }

    @Override
    public void close() throws Exception {
      serverSocket.close();
      threads.shutdownNow();
      threads.awaitTermination(10, TimeUnit.SECONDS);
    }
  }

  /** Connects with a fresh client context (no session to resume) that trusts any certificate. */
  private SSLSocket connect(int port) throws Exception {
    X509TrustManager trustAll = new X509TrustManager() {
      @Override
      public void checkClientTrusted(X509Certificate[] chain, String authType) {}

      @Override
      public void checkServerTrusted(X509Certificate[] chain, String authType) {}

      @Override
      public X509Certificate[] getAcceptedIssuers() {
        return new X509Certificate[0];
      }
    };
    SSLContext client = SSLContext.getInstance("TLS");
    client.init(null, new TrustManager[] {trustAll}, null);
    SSLSocket socket = (SSLSocket) client.getSocketFactory().createSocket();
    toClose.add(socket);
    socket.setSoTimeout(30_000);
    socket.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 30_000);
    socket.startHandshake();
    return socket;
  }

  private static X509Certificate peer(SSLSocket socket) throws Exception {
    return (X509Certificate) socket.getSession().getPeerCertificates()[0];
  }

  private static int roundTrip(SSLSocket socket, int b) throws IOException {
    socket.getOutputStream().write(b);
    socket.getOutputStream().flush();
    return socket.getInputStream().read();
  }

  @Test
  void handshake_servesTheNewCertificate_whileConnectionsMadeBeforeTheReloadKeepWorking()
      throws Exception {
    ServerIdentity first = SelfSignedCertificates.create();
    ServerIdentity second = SelfSignedCertificates.create();
    writePkcs8(first);
    ReloadingKeyManager manager = ReloadingKeyManager.fromDirectory(dir);
    EchoServer server = new EchoServer(manager);
    toClose.add(server);

    SSLSocket before = connect(server.port());
    assertThat(peer(before)).isEqualTo(first.chain().get(0));
    assertThat(roundTrip(before, 'a')).isEqualTo('a');

    writePkcs8(second);
    manager.reloadIfChanged(dir, reloads::add);
    assertThat(reloads).hasSize(1);

    SSLSocket after = connect(server.port());
    assertThat(peer(after)).isEqualTo(second.chain().get(0));
    assertThat(roundTrip(after, 'b')).isEqualTo('b');

    // The connection made before the reload is still open, on the old certificate, and usable.
    assertThat(before.isClosed()).isFalse();
    assertThat(peer(before)).isEqualTo(first.chain().get(0));
    assertThat(roundTrip(before, 'c')).isEqualTo('c');
    assertThat(roundTrip(after, 'd')).isEqualTo('d');
  }

  @Test
  void handshake_succeedsWithAPkcs1RsaKey_andAfterSwitchingToEc() throws Exception {
    Pair rsa = selfSigned("RSA", "rsa-server");
    Pair ec = selfSignedEcWithPublicKeyInSec1("ec-server");
    writeTraditional(rsa);
    ReloadingKeyManager manager = ReloadingKeyManager.fromDirectory(dir);
    EchoServer server = new EchoServer(manager);
    toClose.add(server);

    SSLSocket rsaConnection = connect(server.port());
    assertThat(peer(rsaConnection)).isEqualTo(rsa.certificate());

    writeTraditional(ec);
    manager.reloadIfChanged(dir, reloads::add);
    SSLSocket ecConnection = connect(server.port());

    assertThat(peer(ecConnection)).isEqualTo(ec.certificate());
    assertThat(roundTrip(ecConnection, 'x')).isEqualTo('x');
    assertThat(roundTrip(rsaConnection, 'y')).isEqualTo('y');
  }
}
