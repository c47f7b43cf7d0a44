package dev.bbr.allowlist.kube;

import static java.util.Objects.requireNonNull;

import java.util.Map;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One equality label selector, {@code key=value}, in Kubernetes' label syntax: the one grammar
 * the router's flags, the ConfigMap watch and {@code doctor} share.
 *
 * <p>A key is an optional DNS-subdomain prefix (at most 253 characters) and a slash, then a name
 * of at most 63 characters, alphanumeric at both ends, with {@code -_.} inside. A value is empty
 * or has the name's syntax.
 *
 * @param key the label key, e.g. {@code inference.networking.k8s.io/bbr-managed}
 * @param value the value the label must have exactly, possibly empty
 */
public record LabelSelector(String key, String value) {
  private static final String NAME = "[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?";
  private static final String DNS_LABEL = "[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?";
  private static final Pattern SYNTAX = Pattern.compile(
      "((?:(" + DNS_LABEL + "(?:\\." + DNS_LABEL + ")*)/)?" + NAME + ")=(" + NAME + ")?");
  private static final int MAX_PREFIX_CHARS = 253;

  public LabelSelector {
    requireNonNull(key, "key");
    requireNonNull(value, "value");
  }

  /**
   * Parses {@code key=value}, surrounding blanks ignored.
   *
   * @throws IllegalArgumentException naming the text and the expected form
   */
  public static LabelSelector parse(String text) {
    Matcher m = SYNTAX.matcher(requireNonNull(text, "label selector").trim());
    if (!m.matches() || (m.group(2) != null && m.group(2).length() > MAX_PREFIX_CHARS)) {
      throw new IllegalArgumentException("label selector \"" + text
          + "\" (expected: key=value, e.g. " + KubernetesAllowlistSource.BBR_LABEL_SELECTOR + ")");
    }
    return new LabelSelector(m.group(1), m.group(3) == null ? "" : m.group(3));
  }

  /** True when {@code text} is a valid selector. */
  public static boolean isValid(String text) {
    try {
      parse(text);
      return true;
    } catch (IllegalArgumentException e) {
      return false;
    }
  }

  /** True when {@code labels} carry this key with exactly this value. */
  public boolean matches(Map<String, String> labels) {
    return labels != null && Objects.equals(labels.get(key), value);
  }

  @Override
  public String toString() {
    return key + "=" + value;
  }
}
