package io.quarkiverse.memit.deployment;

import io.quarkiverse.memit.runtime.devui.MemitDevUiService;
import io.quarkus.arc.deployment.AdditionalBeanBuildItem;
import io.quarkus.deployment.IsDevelopment;
import io.quarkus.deployment.IsNormal;
import io.quarkus.deployment.annotations.BuildStep;
import io.quarkus.devui.spi.JsonRPCProvidersBuildItem;
import io.quarkus.devui.spi.page.CardPageBuildItem;
import io.quarkus.devui.spi.page.Page;

/** The Dev UI card and page: the served model, its batches and outcomes, and a form to edit, undo and roll back. */
class MemitDevUiProcessor {

    @BuildStep(onlyIf = IsDevelopment.class)
    CardPageBuildItem card() {
        CardPageBuildItem card = new CardPageBuildItem();
        card.addPage(Page.webComponentPageBuilder()
                .title("Model and edits")
                .icon("font-awesome-solid:brain")
                .componentLink("qwc-memit-model.js"));
        return card;
    }

    @BuildStep(onlyIf = IsDevelopment.class)
    JsonRPCProvidersBuildItem jsonRpc() {
        return new JsonRPCProvidersBuildItem(MemitDevUiService.class);
    }

    /** The page's service, also in tests (which call its methods), never in prod. */
    @BuildStep(onlyIfNot = IsNormal.class)
    AdditionalBeanBuildItem service() {
        return AdditionalBeanBuildItem.unremovableOf(MemitDevUiService.class);
    }
}
