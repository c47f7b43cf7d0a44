package dev.bbr.server.tls;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;

/**
 * Reads a PEM certificate chain and private key, in the forms Kubernetes TLS Secrets and
 * cert-manager write: PKCS#8 ({@code PRIVATE KEY}: RSA, EC, Ed25519), PKCS#1 ({@code RSA PRIVATE
 * KEY}) or SEC 1 ({@code EC PRIVATE KEY}, with or without its optional public key). PKCS#1 and
 * SEC 1 keys are wrapped in PKCS#8 for the JDK's key factories. Encrypted keys are refused.
 */
final class PemFiles {
  private static final String RSA_ENCRYPTION = "1.2.840.113549.1.1.1";
  private static final String EC_PUBLIC_KEY = "1.2.840.10045.2.1";
  /** The key algorithms a PKCS#8 key may name, by OID, as the JDK's KeyFactory calls them. */
  private static final Map<String, String> KEY_ALGORITHMS = Map.of(
      RSA_ENCRYPTION, "RSA",
      "1.2.840.113549.1.1.10", "RSASSA-PSS",
      EC_PUBLIC_KEY, "EC",
      "1.3.101.112", "Ed25519",
      "1.3.101.113", "Ed448");

  private PemFiles() {}

  static ServerIdentity parse(String certificatePem, String keyPem) throws IOException {
    return new ServerIdentity(privateKey(keyPem), certificates(certificatePem));
  }

  /** One {@code -----BEGIN label-----} block: its label, headers seen, and decoded content. */
  record Block(String label, boolean encrypted, byte[] der) {}

  static List<Block> blocks(String pem, String file) throws IOException {
    List<Block> blocks = new ArrayList<>();
    String label = null;
    boolean encrypted = false;
    StringBuilder base64 = new StringBuilder();
    for (String raw : pem.split("\r?\n")) {
      String line = raw.strip();
      if (label == null) {
        if (line.startsWith("-----BEGIN ") && line.endsWith("-----")) {
          label = line.substring("-----BEGIN ".length(), line.length() - "-----".length());
          encrypted = false;
          base64.setLength(0);
        }
        continue; // text outside blocks (openssl's "Bag Attributes", comments) is ignored
      }
      if (line.equals("-----END " + label + "-----")) {
        try {
          blocks.add(new Block(label, encrypted, Base64.getMimeDecoder().decode(base64.toString())));
        } catch (IllegalArgumentException e) {
          throw new IOException(file + ": the " + label + " block is not valid base64", e);
        }
        label = null;
      } else if (line.contains(":")) {
        encrypted |= line.startsWith("Proc-Type:") && line.contains("ENCRYPTED");
      } else {
        base64.append(line);
      }
    }
    if (label != null) {
      throw new IOException(file + ": the " + label + " block has no END line");
    }
    return blocks;
  }

  private static List<X509Certificate> certificates(String pem) throws IOException {
    List<X509Certificate> chain = new ArrayList<>();
    try {
      CertificateFactory factory = CertificateFactory.getInstance("X.509");
      for (Block block : blocks(pem, "tls.crt")) {
        if (block.label().equals("CERTIFICATE")) {
          chain.add((X509Certificate)
              factory.generateCertificate(new ByteArrayInputStream(block.der())));
        }
      }
    } catch (CertificateException e) {
      throw new IOException("tls.crt: not a valid certificate", e);
    }
    if (chain.isEmpty()) {
      throw new IOException("tls.crt: no PEM certificate found");
    }
    return chain;
  }

  private static PrivateKey privateKey(String pem) throws IOException {
    for (Block block : blocks(pem, "tls.key")) {
      if (block.encrypted() || block.label().equals("ENCRYPTED PRIVATE KEY")) {
        throw new IOException("tls.key: the key is encrypted; give it unencrypted, as Kubernetes"
            + " TLS Secrets hold it");
      }
      switch (block.label()) {
        case "PRIVATE KEY":
          return pkcs8(block.der());
        case "RSA PRIVATE KEY":
          return pkcs8(Der.sequence(Der.integer(0),
              Der.sequence(Der.oid(RSA_ENCRYPTION), Der.nullValue()),
              Der.octetString(block.der())));
        case "EC PRIVATE KEY":
          return pkcs8(Der.sequence(Der.integer(0),
              Der.sequence(Der.oid(EC_PUBLIC_KEY), Der.value(Der.OID, namedCurve(block.der()))),
              Der.octetString(block.der())));
        default:
          break; // EC PARAMETERS, which `openssl ecparam -genkey` writes first, and others
      }
    }
    throw new IOException("tls.key: no PEM private key found");
  }

  /** The content of the curve OID in a SEC 1 key's {@code [0] parameters}. */
  private static byte[] namedCurve(byte[] sec1) throws IOException {
    Der.Reader key = new Der.Reader(sec1).next(Der.SEQUENCE).children();
    key.next(Der.INTEGER); // version 1
    key.next(Der.OCTET_STRING); // the private value
    while (key.hasMore()) {
      Der.Element element = key.next();
      if (element.tag() == Der.explicitTag(0)) {
        return element.children().next(Der.OID).content();
      }
    }
    throw new IOException("tls.key: the EC key does not name its curve");
  }

  private static PrivateKey pkcs8(byte[] der) throws IOException {
    String algorithm = KEY_ALGORITHMS.get(algorithmOid(der));
    if (algorithm == null) {
      throw new IOException("tls.key: unsupported key algorithm " + algorithmOid(der));
    }
    try {
      return KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(der));
    } catch (GeneralSecurityException e) {
      throw new IOException("tls.key: not a valid " + algorithm + " private key", e);
    }
  }

  private static String algorithmOid(byte[] pkcs8) throws IOException {
    Der.Reader info = new Der.Reader(pkcs8).next(Der.SEQUENCE).children();
    info.next(Der.INTEGER);
    return Der.oidText(info.next(Der.SEQUENCE).children().next(Der.OID).content());
  }
}
