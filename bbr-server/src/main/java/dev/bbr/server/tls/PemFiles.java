package dev.bbr.server.tls;

import java.io.IOException;
import java.io.StringReader;
import java.security.PrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;

/**
 * Reads a PEM certificate chain and private key, in the forms Kubernetes TLS Secrets and
 * cert-manager write: PKCS#8 ({@code PRIVATE KEY}), PKCS#1 ({@code RSA PRIVATE KEY}) or SEC 1
 * ({@code EC PRIVATE KEY}). Encrypted keys are not supported.
 */
final class PemFiles {
  private PemFiles() {}

  static ServerIdentity parse(String certificatePem, String keyPem) throws IOException {
    return new ServerIdentity(privateKey(keyPem), certificates(certificatePem));
  }

  private static List<X509Certificate> certificates(String pem) throws IOException {
    List<X509Certificate> chain = new ArrayList<>();
    JcaX509CertificateConverter converter = new JcaX509CertificateConverter();
    try (PEMParser parser = new PEMParser(new StringReader(pem))) {
      for (Object o = parser.readObject(); o != null; o = parser.readObject()) {
        if (o instanceof X509CertificateHolder holder) {
          chain.add(converter.getCertificate(holder));
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
    JcaPEMKeyConverter converter = new JcaPEMKeyConverter();
    try (PEMParser parser = new PEMParser(new StringReader(pem))) {
      for (Object o = parser.readObject(); o != null; o = parser.readObject()) {
        if (o instanceof PrivateKeyInfo info) {
          return converter.getPrivateKey(info);
        }
        if (o instanceof PEMKeyPair pair) {
          return converter.getPrivateKey(pair.getPrivateKeyInfo()); // public part optional
        }
      }
    }
    throw new IOException("tls.key: no unencrypted PEM private key found");
  }
}
