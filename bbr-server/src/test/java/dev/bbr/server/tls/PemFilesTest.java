package dev.bbr.server.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.StringWriter;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.util.Base64;
import java.util.List;
import org.bouncycastle.asn1.sec.ECPrivateKey;
import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JceOpenSSLPKCS8EncryptorBuilder;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.openssl.jcajce.JcePEMEncryptorBuilder;
import org.bouncycastle.util.io.pem.PemObject;
import org.bouncycastle.util.io.pem.PemWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The PEM forms a TLS Secret may hold, each written by BouncyCastle (an encoder independent of
 * the router's reader), and what the reader answers for the forms it refuses.
 */
class PemFilesTest {
  private static final ServerIdentity SELF_SIGNED = SelfSignedCertificates.create();
  private static final String CERTIFICATE = pem(SELF_SIGNED.chain().get(0));

  private static KeyPair keys(String algorithm) throws Exception {
    KeyPairGenerator generator = KeyPairGenerator.getInstance(algorithm);
    switch (algorithm) {
      case "EC" -> generator.initialize(new ECGenParameterSpec("secp384r1"));
      case "RSA" -> generator.initialize(2048);
      default -> { } // Ed25519 has one size
    }
    return generator.generateKeyPair();
  }

  /**
   * Keys as OpenSSL, Go and cert-manager write them in SEC 1: with the named curve (the JDK's own
   * EC keys leave it out of the SEC 1 they carry, so BouncyCastle's provider makes these).
   */
  private static KeyPair traditionalKeys(String algorithm) throws Exception {
    if (!algorithm.equals("EC")) {
      return keys(algorithm);
    }
    KeyPairGenerator generator = KeyPairGenerator.getInstance("EC", new BouncyCastleProvider());
    generator.initialize(new ECGenParameterSpec("secp384r1"));
    return generator.generateKeyPair();
  }

  private static String pem(Object... objects) {
    StringWriter out = new StringWriter();
    try (JcaPEMWriter writer = new JcaPEMWriter(out)) {
      for (Object o : objects) {
        writer.writeObject(o);
      }
    } catch (IOException e) {
      throw new AssertionError(e);
    }
    return out.toString();
  }

  private static PrivateKey read(String keyPem) throws IOException {
    return PemFiles.parse(CERTIFICATE, keyPem).key();
  }

  @ParameterizedTest
  @ValueSource(strings = {"RSA", "EC", "Ed25519"})
  void pkcs8_readsTheKeyOfEachAlgorithm(String algorithm) throws Exception {
    KeyPair keys = keys(algorithm);
    String pem = pem(new JcaPKCS8Generator(keys.getPrivate(), null));
    assertThat(pem).startsWith("-----BEGIN PRIVATE KEY-----");

    assertThat(read(pem).getEncoded()).isEqualTo(keys.getPrivate().getEncoded());
  }

  @ParameterizedTest
  @ValueSource(strings = {"RSA", "EC"})
  void traditional_pkcs1AndSec1_readAsTheSameKey(String algorithm) throws Exception {
    KeyPair keys = traditionalKeys(algorithm);
    String pem = pem(keys); // PKCS#1 for RSA, SEC 1 with its curve and public key for EC
    assertThat(pem).startsWith(
        algorithm.equals("RSA") ? "-----BEGIN RSA PRIVATE KEY-----" : "-----BEGIN EC PRIVATE KEY-----");

    PrivateKey read = read(pem);
    assertThat(read.getAlgorithm()).isEqualTo(algorithm);
    assertThat(secret(read)).isEqualTo(secret(keys.getPrivate()));
  }

  @Test
  void sec1_afterTheEcParametersBlockOpensslEcparamWrites() throws Exception {
    KeyPair keys = traditionalKeys("EC");
    String parameters = "-----BEGIN EC PARAMETERS-----\nBgUrgQQAIg==\n-----END EC PARAMETERS-----\n";

    assertThat(secret(read(parameters + pem(keys)))).isEqualTo(secret(keys.getPrivate()));
  }

  @Test
  void textAroundTheBlocks_asOpensslPkcs12Writes_isIgnored() throws Exception {
    KeyPair keys = keys("EC");
    String bag = "Bag Attributes\n    localKeyID: 01 02 03\nsubject=CN = x\n";
    ServerIdentity identity = PemFiles.parse(
        bag + CERTIFICATE + "\n", bag + pem(new JcaPKCS8Generator(keys.getPrivate(), null)));

    assertThat(identity.chain()).containsExactly(SELF_SIGNED.chain().get(0));
    assertThat(identity.key()).isEqualTo(keys.getPrivate());
  }

  @Test
  void chain_keepsEveryCertificateInOrder_withCrlfLineEnds() throws Exception {
    X509Certificate other = SelfSignedCertificates.create().chain().get(0);
    String chain = (CERTIFICATE + pem(other)).replace("\n", "\r\n");

    assertThat(PemFiles.parse(chain, pem(keys("RSA"))).chain())
        .containsExactly(SELF_SIGNED.chain().get(0), other);
  }

  @Test
  void sec1WithoutItsCurve_isRefusedByName() throws Exception {
    java.security.interfaces.ECPrivateKey key =
        (java.security.interfaces.ECPrivateKey) keys("EC").getPrivate();
    byte[] noParameters = new ECPrivateKey(384, key.getS()).getEncoded();

    assertThatThrownBy(() -> read(block("EC PRIVATE KEY", noParameters)))
        .isInstanceOf(IOException.class).hasMessageContaining("does not name its curve");
  }

  @Test
  void encryptedKeys_ofBothForms_areRefusedSayingSo() throws Exception {
    KeyPair keys = keys("RSA");
    String traditional = pem(new org.bouncycastle.openssl.jcajce.JcaMiscPEMGenerator(
        keys.getPrivate(), new JcePEMEncryptorBuilder("AES-128-CBC")
            .setProvider(new BouncyCastleProvider()).build("secret".toCharArray())));
    assertThat(traditional).contains("Proc-Type: 4,ENCRYPTED");
    String pkcs8 = pem(new JcaPKCS8Generator(keys.getPrivate(),
        new JceOpenSSLPKCS8EncryptorBuilder(JcaPKCS8Generator.AES_256_CBC)
            .setProvider(new BouncyCastleProvider()).setPassword("secret".toCharArray()).build()));
    assertThat(pkcs8).startsWith("-----BEGIN ENCRYPTED PRIVATE KEY-----");

    for (String encrypted : List.of(traditional, pkcs8)) {
      assertThatThrownBy(() -> read(encrypted))
          .isInstanceOf(IOException.class).hasMessageContaining("tls.key: the key is encrypted");
    }
  }

  @Test
  void refusals_nameTheFileAndTheProblem() throws Exception {
    byte[] dsa = KeyPairGenerator.getInstance("DSA").generateKeyPair().getPrivate().getEncoded();
    assertThatThrownBy(() -> read(block("PRIVATE KEY", dsa)))
        .hasMessage("tls.key: unsupported key algorithm 1.2.840.10040.4.1");
    assertThatThrownBy(() -> read(CERTIFICATE))
        .hasMessage("tls.key: no PEM private key found");
    assertThatThrownBy(() -> PemFiles.parse("not a certificate", pem(keys("RSA"))))
        .hasMessage("tls.crt: no PEM certificate found");
    assertThatThrownBy(() -> PemFiles.parse(block("CERTIFICATE", new byte[] {0x30, 0}), pem(keys("RSA"))))
        .hasMessage("tls.crt: not a valid certificate");
    assertThatThrownBy(() -> read("-----BEGIN PRIVATE KEY-----\nMIIB\n"))
        .hasMessage("tls.key: the PRIVATE KEY block has no END line");
    assertThatThrownBy(() -> read(block("PRIVATE KEY", new byte[] {0x30, 0x05, 0x02})))
        .isInstanceOf(IOException.class).hasMessageContaining("overruns");
    assertThatThrownBy(() -> read(block("RSA PRIVATE KEY", new byte[] {0x30, 0x03, 0x02, 0x01, 0x00})))
        .hasMessage("tls.key: not a valid RSA private key");
  }

  @Test
  void selfSigned_isParsedTheSameByAnIndependentDecoder() throws Exception {
    X509Certificate ours = SELF_SIGNED.chain().get(0);
    X509CertificateHolder theirs = new X509CertificateHolder(ours.getEncoded());

    assertThat(theirs.getVersionNumber()).isEqualTo(3);
    assertThat(theirs.getSubject().toString()).isEqualTo("CN=body-based-router,O=bbr self-signed");
    assertThat(theirs.getIssuer()).isEqualTo(theirs.getSubject());
    assertThat(theirs.getSignatureAlgorithm())
        .isEqualTo(new AlgorithmIdentifier(
            org.bouncycastle.asn1.x9.X9ObjectIdentifiers.ecdsa_with_SHA256));
    assertThat(theirs.getExtension(org.bouncycastle.asn1.x509.Extension.basicConstraints)
        .isCritical()).isTrue();
    assertThat(theirs.isSignatureValid(
        new org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder()
            .build(ours.getPublicKey()))).isTrue();
    assertThat(theirs.getNotAfter().toInstant()).isEqualTo(ours.getNotAfter().toInstant());
  }

  /** The private value, compared across providers whose encodings differ in optional parts. */
  private static java.math.BigInteger secret(PrivateKey key) {
    return key instanceof java.security.interfaces.ECPrivateKey ec
        ? ec.getS() : ((java.security.interfaces.RSAPrivateKey) key).getPrivateExponent();
  }

  private static String block(String label, byte[] der) throws IOException {
    StringWriter out = new StringWriter();
    try (PemWriter writer = new PemWriter(out)) {
      writer.writeObject(new PemObject(label, der));
    }
    return out.toString();
  }

  @Test
  void blocks_decodeBase64AcrossLines() throws Exception {
    byte[] der = new byte[200];
    der[7] = 42;
    List<PemFiles.Block> blocks = PemFiles.blocks(block("X", der), "f");

    assertThat(blocks).singleElement().satisfies(b -> {
      assertThat(b.label()).isEqualTo("X");
      assertThat(b.der()).isEqualTo(der);
      assertThat(b.encrypted()).isFalse();
    });
    assertThat(Base64.getEncoder().encodeToString(der)).hasSizeGreaterThan(64); // several lines
  }
}
