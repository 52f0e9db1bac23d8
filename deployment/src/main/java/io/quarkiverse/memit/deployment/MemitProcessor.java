package io.quarkiverse.memit.deployment;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import jakarta.enterprise.context.ApplicationScoped;

import org.jboss.jandex.AnnotationInstance;
import org.jboss.jandex.DotName;

import io.quarkiverse.langchain4j.ModelName;
import io.quarkiverse.langchain4j.deployment.LangChain4jDotNames;
import io.quarkiverse.langchain4j.deployment.items.ChatModelProviderCandidateBuildItem;
import io.quarkiverse.langchain4j.deployment.items.SelectedChatModelProviderBuildItem;
import io.quarkiverse.langchain4j.runtime.NamedConfigUtil;
import io.quarkiverse.memit.runtime.ServedModel;
import io.quarkiverse.memit.runtime.config.MemitBuildTimeConfig;
import io.quarkiverse.memit.runtime.edits.BrokerCheck;
import io.quarkiverse.memit.runtime.edits.EditMetrics;
import io.quarkiverse.memit.runtime.edits.EditWorker;
import io.quarkiverse.memit.runtime.edits.KafkaClients;
import io.quarkiverse.memit.runtime.edits.KnowledgeUpdateListener;
import io.quarkiverse.memit.runtime.edits.OutcomePublisher;
import io.quarkiverse.memit.runtime.health.ServedModelHealthCheck;
import io.quarkiverse.memit.runtime.langchain4j.MemitChatModelRecorder;
import io.quarkiverse.memit.runtime.langchain4j.StreamingExecutor;
import io.quarkiverse.memit.runtime.replication.DeltaLog;
import io.quarkiverse.memit.runtime.replication.ReplicationHealthCheck;
import io.quarkiverse.memit.runtime.rest.EditResource;
import io.quarkiverse.memit.runtime.rest.ManagementAccess;
import io.quarkiverse.memit.runtime.rest.MemitResource;
import io.quarkiverse.memit.runtime.rest.OpenAiResource;
import io.quarkus.arc.deployment.AdditionalBeanBuildItem;
import io.quarkus.arc.deployment.SyntheticBeanBuildItem;
import io.quarkus.deployment.annotations.BuildProducer;
import io.quarkus.deployment.annotations.BuildStep;
import io.quarkus.deployment.annotations.ExecutionTime;
import io.quarkus.deployment.annotations.Record;
import io.quarkus.deployment.builditem.AdditionalIndexedClassesBuildItem;
import io.quarkus.deployment.builditem.FeatureBuildItem;
import io.quarkus.deployment.builditem.RunTimeConfigurationDefaultBuildItem;

class MemitProcessor {

    static final String FEATURE = "memit";
    private static final String BYTES_IN = "org.apache.kafka.common.serialization.ByteArrayDeserializer";
    private static final String BYTES_OUT = "org.apache.kafka.common.serialization.ByteArraySerializer";
    private static final String TEXT_OUT = "org.apache.kafka.common.serialization.StringSerializer";
    /** The name applications select us by: {@code quarkus.langchain4j.chat-model.provider=memit}. */
    private static final String PROVIDER = "memit";

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
        return new AdditionalBeanBuildItem(ServedModelHealthCheck.class, ReplicationHealthCheck.class);
    }

    /**
     * {@code /memit/model}, {@code /memit/completions}, {@code /memit/completions/stream} and the edit endpoints, and
     * the OpenAI-compatible {@code /v1}, unless disabled.
     */
    @BuildStep
    void restEndpoints(MemitBuildTimeConfig config, BuildProducer<AdditionalIndexedClassesBuildItem> indexed,
            BuildProducer<AdditionalBeanBuildItem> beans) {
        if (config.rest().enabled()) {
            indexed.produce(new AdditionalIndexedClassesBuildItem(MemitResource.class.getName(),
                    EditResource.class.getName()));
            beans.produce(AdditionalBeanBuildItem.unremovableOf(MemitResource.class));
            beans.produce(AdditionalBeanBuildItem.unremovableOf(EditResource.class));
            beans.produce(AdditionalBeanBuildItem.unremovableOf(ManagementAccess.class));
        }
        if (config.openai().enabled()) {
            indexed.produce(new AdditionalIndexedClassesBuildItem(OpenAiResource.class.getName()));
            beans.produce(AdditionalBeanBuildItem.unremovableOf(OpenAiResource.class));
        }
    }

    /** The edit worker and the Kafka listener of knowledge updates. */
    @BuildStep
    AdditionalBeanBuildItem editing() {
        return AdditionalBeanBuildItem.builder().addBeanClasses(EditWorker.class, KnowledgeUpdateListener.class,
                OutcomePublisher.class, BrokerCheck.class, EditMetrics.class, KafkaClients.class, DeltaLog.class)
                .setUnremovable().build();
    }

    /**
     * The Kafka channels of knowledge updates, their dead letters and outcomes: connector, topics, serdes (updates and
     * dead letters as bytes, so that a dead letter is the record as received; outcomes as text), one record at a time
     * from the earliest offset, paused until the model is served, offsets committed within a second of each record's
     * outcome. Each is a default the application overrides with {@code mp.messaging.*.<channel>.*}.
     */
    @BuildStep
    void kafkaChannelDefaults(BuildProducer<RunTimeConfigurationDefaultBuildItem> defaults) {
        String in = "mp.messaging.incoming." + KnowledgeUpdateListener.UPDATES + ".";
        Map<String, String> values = new LinkedHashMap<>();
        values.put(in + "connector", "smallrye-kafka");
        values.put(in + "topic", "knowledge-updates");
        values.put(in + "value.deserializer", BYTES_IN);
        values.put(in + "key.deserializer", BYTES_IN);
        values.put(in + "auto.offset.reset", "earliest");
        values.put(in + "group.id", "quarkus-memit");
        values.put(in + "commit-strategy", "throttled");
        // records are acknowledged one by one as their outcomes are written: commit what is done every second
        values.put(in + "auto.commit.interval.ms", "1000");
        // a batch may take minutes on a large model: its records stay unacknowledged that long
        values.put(in + "throttled.unprocessed-record-max-age.ms", "0");
        // nothing is read until the model is served with edits (KnowledgeUpdateListener resumes it)
        values.put(in + "pausable", "true");
        values.put(in + "pausable.initially-paused", "true");
        for (String[] out : new String[][] {
                { KnowledgeUpdateListener.DEAD_LETTERS, "knowledge-updates-dlq", BYTES_OUT, BYTES_OUT },
                { KnowledgeUpdateListener.OUTCOMES, "knowledge-updates-applied", TEXT_OUT, TEXT_OUT } }) {
            String prefix = "mp.messaging.outgoing." + out[0] + ".";
            values.put(prefix + "connector", "smallrye-kafka");
            values.put(prefix + "topic", out[1]);
            values.put(prefix + "value.serializer", out[2]);
            values.put(prefix + "key.serializer", out[3]);
            values.put(prefix + "close-timeout", "1000");
        }
        values.forEach((k, v) -> defaults.produce(new RunTimeConfigurationDefaultBuildItem(k, v)));
    }

    /** quarkus-langchain4j may pick the served model as the chat model of its AI services. */
    @BuildStep
    void chatModelProvider(BuildProducer<ChatModelProviderCandidateBuildItem> candidates,
            BuildProducer<AdditionalBeanBuildItem> beans) {
        candidates.produce(new ChatModelProviderCandidateBuildItem(PROVIDER));
        beans.produce(AdditionalBeanBuildItem.unremovableOf(StreamingExecutor.class));
    }

    /** For each model configuration that selected us, a {@code ChatModel} and a {@code StreamingChatModel}. */
    @BuildStep
    @Record(ExecutionTime.RUNTIME_INIT)
    void chatModels(MemitChatModelRecorder recorder, List<SelectedChatModelProviderBuildItem> selected,
            BuildProducer<SyntheticBeanBuildItem> beans) {
        for (SelectedChatModelProviderBuildItem s : selected) {
            if (!PROVIDER.equals(s.getProvider())) {
                continue;
            }
            beans.produce(chatBean(LangChain4jDotNames.CHAT_MODEL, s.getConfigName())
                    .supplier(recorder.chatModel()).done());
            beans.produce(chatBean(LangChain4jDotNames.STREAMING_CHAT_MODEL, s.getConfigName())
                    .supplier(recorder.streamingChatModel()).done());
        }
    }

    private static SyntheticBeanBuildItem.ExtendedBeanConfigurator chatBean(DotName type, String configName) {
        SyntheticBeanBuildItem.ExtendedBeanConfigurator bean = SyntheticBeanBuildItem.configure(type).setRuntimeInit()
                .defaultBean().scope(ApplicationScoped.class);
        if (!NamedConfigUtil.isDefault(configName)) {
            bean.addQualifier(AnnotationInstance.builder(ModelName.class).add("value", configName).build());
        }
        return bean;
    }
}
