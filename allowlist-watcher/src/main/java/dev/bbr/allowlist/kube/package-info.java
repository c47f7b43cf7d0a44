/** The allowlist source that watches labelled ConfigMaps through the Kubernetes API. */
package dev.bbr.allowlist.kube;
