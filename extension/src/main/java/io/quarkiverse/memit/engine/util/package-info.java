/** Small helpers the engine's packages share (files, mappings). */
package io.quarkiverse.memit.engine.util;
