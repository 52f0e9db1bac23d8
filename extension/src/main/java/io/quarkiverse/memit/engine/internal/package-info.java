/**
 * Plumbing the engine's packages share — whole-channel reads and writes, atomic file replacement, mapping release,
 * arrays in libtorch's own memory, exception texts. Not part of the engine's API: it may change without notice.
 */
package io.quarkiverse.memit.engine.internal;
