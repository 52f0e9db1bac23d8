package io.quarkiverse.memit.deployment;

import io.quarkiverse.memit.runtime.ServedModel;
import io.quarkiverse.memit.runtime.config.MemitBuildTimeConfig;
import io.quarkiverse.memit.runtime.health.ServedModelHealthCheck;
import io.quarkiverse.memit.runtime.rest.MemitResource;
import io.quarkus.arc.deployment.AdditionalBeanBuildItem;
import io.quarkus.deployment.annotations.BuildProducer;
import io.quarkus.deployment.annotations.BuildStep;
import io.quarkus.deployment.builditem.AdditionalIndexedClassesBuildItem;
import io.quarkus.deployment.builditem.FeatureBuildItem;

class MemitProcessor {

    static final String FEATURE = "memit";

    @BuildStep
    FeatureBuildItem feature() {
        return new FeatureBuildItem(FEATURE);
    }

    /** The configured model, loaded at startup. */
    @BuildStep
    AdditionalBeanBuildItem servedModel() {
        return AdditionalBeanBuildItem.unremovableOf(ServedModel.class);
    }

    @BuildStep
    AdditionalBeanBuildItem healthChecks() {
        return new AdditionalBeanBuildItem(ServedModelHealthCheck.class);
    }

    /** {@code /memit/model}, {@code /memit/completions} and {@code /memit/completions/stream}, unless disabled. */
    @BuildStep
    void restEndpoints(MemitBuildTimeConfig config, BuildProducer<AdditionalIndexedClassesBuildItem> indexed,
            BuildProducer<AdditionalBeanBuildItem> beans) {
        if (config.rest().enabled()) {
            indexed.produce(new AdditionalIndexedClassesBuildItem(MemitResource.class.getName()));
            beans.produce(AdditionalBeanBuildItem.unremovableOf(MemitResource.class));
        }
    }
}
