package dev.bbr.allowlist;

/**
 * A name that two mappings resolve differently, and the resolution the allowlist applied.
 *
 * @param name the contested model or adapter name
 * @param chosenBaseModel the base model the name resolves to
 * @param chosenSource the mapping that won: the oldest claim, base model or adapter alike
 * @param ignoredBaseModel the base model the losing mapping asked for
 * @param ignoredSource the mapping that lost
 */
public record Conflict(
    String name,
    String chosenBaseModel,
    String chosenSource,
    String ignoredBaseModel,
    String ignoredSource) {}
