package dev.bbr.server.config;

import java.util.List;

/**
 * What the {@code --plugin} flags ask for: the one top-level body field read, the headers that get
 * its value (lower-case), and whether the allowlist's base model is written too.
 *
 * @param field the body field, {@code model} unless a {@code body-field-to-header} names another
 * @param valueHeaders the headers set to the field's value
 * @param baseModelHeader true when {@code base-model-to-header} is configured
 */
public record HeaderPlan(String field, List<String> valueHeaders, boolean baseModelHeader) {
  /** Upstream's default plugins: {@code model} into x-gateway-model-name, and the base model. */
  public static final HeaderPlan DEFAULT =
      new HeaderPlan("model", List.of("x-gateway-model-name"), true);

  public HeaderPlan {
    valueHeaders = List.copyOf(valueHeaders);
  }
}
