package io.quarkiverse.memit.runtime.rest;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Optional;

import org.junit.jupiter.api.Test;

import io.quarkiverse.memit.runtime.rest.ManagementAccess.Mode;
import io.quarkus.runtime.LaunchMode;

class ManagementAccessTest {

    @Test
    void prodIsLockedUnlessACredentialIsSetOrTheOperatorOpensIt() {
        assertEquals(Mode.OFF, ManagementAccess.mode(LaunchMode.NORMAL, Optional.empty(), false, false));
        assertEquals(Mode.GUARDED, ManagementAccess.mode(LaunchMode.NORMAL, Optional.empty(), true, false));
        assertEquals(Mode.GUARDED, ManagementAccess.mode(LaunchMode.NORMAL, Optional.empty(), false, true));
        assertEquals(Mode.OPEN, ManagementAccess.mode(LaunchMode.NORMAL, Optional.of(true), false, false));
        assertEquals(Mode.OFF, ManagementAccess.mode(LaunchMode.NORMAL, Optional.of(false), true, true));
    }

    @Test
    void devAndTestAreOpenUnlessConfiguredOtherwise() {
        for (LaunchMode mode : new LaunchMode[] { LaunchMode.DEVELOPMENT, LaunchMode.TEST }) {
            assertEquals(Mode.OPEN, ManagementAccess.mode(mode, Optional.empty(), false, false));
            assertEquals(Mode.GUARDED, ManagementAccess.mode(mode, Optional.empty(), true, false));
            assertEquals(Mode.OFF, ManagementAccess.mode(mode, Optional.of(false), false, false));
        }
    }
}
