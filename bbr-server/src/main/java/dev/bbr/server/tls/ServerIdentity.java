package dev.bbr.server.tls;

import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.List;

/**
 * A private key and the certificate chain that goes with it, leaf first.
 *
 * @param key the private key
 * @param chain the leaf certificate, then any intermediates
 */
public record ServerIdentity(PrivateKey key, List<X509Certificate> chain) {
  public ServerIdentity {
    if (chain.isEmpty()) {
      throw new IllegalArgumentException("chain: empty (expected: at least the leaf certificate)");
    }
    chain = List.copyOf(chain);
  }

  /** Returns when the leaf certificate expires. */
  public Instant notAfter() {
    return chain.get(0).getNotAfter().toInstant();
  }
}
