package io.quarkiverse.memit.deployment;

import io.quarkiverse.memit.runtime.health.ModelCheckpointHealthCheck;
import io.quarkus.arc.deployment.AdditionalBeanBuildItem;
import io.quarkus.deployment.annotations.BuildStep;
import io.quarkus.deployment.builditem.FeatureBuildItem;

class MemitProcessor {

    private static final String FEATURE = "memit";

    @BuildStep
    FeatureBuildItem feature() {
        return new FeatureBuildItem(FEATURE);
    }

    @BuildStep
    AdditionalBeanBuildItem healthChecks() {
        return new AdditionalBeanBuildItem(ModelCheckpointHealthCheck.class);
    }
}
