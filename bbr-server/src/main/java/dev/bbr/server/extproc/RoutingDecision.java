package dev.bbr.server.extproc;

import dev.bbr.allowlist.Allowlist;

/**
 * What to do with a request once its body has named a model, or ended without one: a pure
 * function of the model, the allowlist snapshot and the policy, with no gRPC in sight.
 */
sealed interface RoutingDecision {
  /**
   * Set the routing headers: {@code model} into the value headers and, when the policy resolves
   * base models, {@code baseModel} into {@code x-gateway-base-model-name} (empty for upstream's
   * unknown-model passthrough; null when not resolving).
   */
  record Route(Outcome outcome, String model, String baseModel) implements RoutingDecision {}

  /** Let the request through without routing headers (the body named no model). */
  record PassThrough(Outcome outcome) implements RoutingDecision {}

  /** Answer it with a local reply. */
  record Refuse(Refusal refusal) implements RoutingDecision {}

  /**
   * @param requested the model the body named, or null when it named none
   */
  static RoutingDecision of(String requested, Allowlist allowlist, RoutingPolicy policy) {
    RoutingHeaders headers = policy.headers();
    if (requested == null) {
      return policy.rejectMissingModel() ? new Refuse(Refusal.missingModel(headers.field()))
          : new PassThrough(Outcome.MODEL_MISSING);
    }
    if (!headers.resolvesBaseModel()) {
      return new Route(Outcome.ROUTED, requested, null); // the value alone, whatever it is
    }
    String base = allowlist.baseModelOf(requested);
    if (base != null) {
      return new Route(Outcome.ROUTED, requested, base);
    }
    return policy.rejectUnknownModel() ? new Refuse(Refusal.unknownModel(requested))
        : new Route(Outcome.UNKNOWN_PASSTHROUGH, requested, ""); // upstream's: an empty base model
  }
}
