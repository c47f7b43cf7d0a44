package dev.bbr.server.doctor;

import java.util.Objects;

/**
 * A cluster object a finding involves.
 *
 * @param namespace empty for cluster-scoped objects
 */
record ObjectRef(String kind, String namespace, String name) {
  ObjectRef {
    Objects.requireNonNull(kind, "kind");
    namespace = namespace == null ? "" : namespace;
    Objects.requireNonNull(name, "name");
  }

  /** {@code Kind namespace/name}, as the text report prints it. */
  @Override
  public String toString() {
    return kind + " " + (namespace.isEmpty() ? name : namespace + "/" + name);
  }
}
