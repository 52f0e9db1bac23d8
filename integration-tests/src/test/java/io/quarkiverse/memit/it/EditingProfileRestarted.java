package io.quarkiverse.memit.it;

/**
 * {@link EditingProfile}'s configuration under another profile: Quarkus starts the application anew, on the same
 * journal. Its name sorts after {@code EditingProfile}, so its tests run after those that edit.
 */
public class EditingProfileRestarted extends EditingProfile {
}
