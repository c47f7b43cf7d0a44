package dev.bbr.server.tls;

import java.io.ByteArrayInputStream;
import java.math.BigInteger;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Makes the self-signed certificate the router serves when no {@code --cert-path} is given, as the
 * upstream BBR does: gateways in front of it (GKE, Istio with {@code insecureSkipVerify}) encrypt
 * without verifying. Give a real certificate with {@code --cert-path} to have it verified.
 *
 * <p>The certificate is written as RFC 5280 DER with {@link Der} and signed with the JDK's
 * ECDSA; the JDK's CertificateFactory then parses it, so a malformed encoding fails here.
 */
public final class SelfSignedCertificates {
  /** Long enough to outlive any pod; a restart makes a new one. */
  static final Duration VALIDITY = Duration.ofDays(3650);

  private static final String ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";
  private static final String COMMON_NAME = "2.5.4.3";
  private static final String ORGANIZATION = "2.5.4.10";
  private static final String BASIC_CONSTRAINTS = "2.5.29.19";
  private static final String EXTENDED_KEY_USAGE = "2.5.29.37";
  private static final String SUBJECT_ALT_NAME = "2.5.29.17";
  private static final String SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
  private static final int DNS_NAME = 2;
  private static final int IP_ADDRESS = 7;
  private static final Pattern DNS_NAME_SYNTAX =
      Pattern.compile("(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*");

  private SelfSignedCertificates() {}

  /** Makes an ECDSA P-256 key and a certificate for localhost, 127.0.0.1 and this host's name. */
  public static ServerIdentity create() {
    try {
      SecureRandom random = new SecureRandom();
      KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
      generator.initialize(new ECGenParameterSpec("secp256r1"), random);
      KeyPair keys = generator.generateKeyPair();

      Instant now = Instant.now().truncatedTo(ChronoUnit.SECONDS);
      byte[] signatureAlgorithm = Der.sequence(Der.oid(ECDSA_WITH_SHA256));
      byte[] name = Der.sequence(
          Der.set(Der.sequence(Der.oid(COMMON_NAME), Der.utf8String("body-based-router"))),
          Der.set(Der.sequence(Der.oid(ORGANIZATION), Der.utf8String("bbr self-signed"))));
      byte[] toBeSigned = Der.sequence(
          Der.explicit(0, Der.integer(2)), // v3
          Der.integer(new BigInteger(127, random)),
          signatureAlgorithm,
          name, // issuer
          Der.sequence(Der.time(now.minus(Duration.ofHours(1))), Der.time(now.plus(VALIDITY))),
          name, // subject
          keys.getPublic().getEncoded(), // SubjectPublicKeyInfo
          Der.explicit(3, Der.sequence(
              extension(BASIC_CONSTRAINTS, true, Der.sequence()), // not a CA
              extension(EXTENDED_KEY_USAGE, false, Der.sequence(Der.oid(SERVER_AUTH))),
              extension(SUBJECT_ALT_NAME, false, subjectAltNames()))));

      Signature signer = Signature.getInstance("SHA256withECDSA");
      signer.initSign(keys.getPrivate(), random);
      signer.update(toBeSigned);
      byte[] certificate =
          Der.sequence(toBeSigned, signatureAlgorithm, Der.bitString(signer.sign()));
      X509Certificate parsed = (X509Certificate) CertificateFactory.getInstance("X.509")
          .generateCertificate(new ByteArrayInputStream(certificate));
      return new ServerIdentity(keys.getPrivate(), List.of(parsed));
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("cannot make a self-signed certificate", e);
    }
  }

  private static byte[] extension(String oid, boolean critical, byte[] value) {
    return critical
        ? Der.sequence(Der.oid(oid), Der.bool(true), Der.octetString(value))
        : Der.sequence(Der.oid(oid), Der.octetString(value)); // DER omits the default FALSE
  }

  private static byte[] subjectAltNames() {
    Set<String> dnsNames = new LinkedHashSet<>(List.of("localhost"));
    try {
      String host = InetAddress.getLocalHost().getHostName();
      if (DNS_NAME_SYNTAX.matcher(host).matches()) { // a dNSName the JDK's parser accepts
        dnsNames.add(host);
      }
    } catch (UnknownHostException ignored) {
      // no host name: localhost and the IP address still work
    }
    List<byte[]> names = new ArrayList<>();
    for (String dns : dnsNames) {
      names.add(Der.implicitPrimitive(DNS_NAME, dns.getBytes(StandardCharsets.US_ASCII)));
    }
    names.add(Der.implicitPrimitive(IP_ADDRESS, new byte[] {127, 0, 0, 1}));
    return Der.sequence(names.toArray(byte[][]::new));
  }
}
