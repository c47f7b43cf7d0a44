/** Finding the top-level {@code model} of a JSON request body without parsing the whole body. */
package dev.bbr.server.extraction;
