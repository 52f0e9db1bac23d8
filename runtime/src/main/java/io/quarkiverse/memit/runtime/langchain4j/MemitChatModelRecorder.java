package io.quarkiverse.memit.runtime.langchain4j;

import java.util.function.Supplier;

import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.StreamingChatModel;
import io.quarkiverse.memit.runtime.ServedModel;
import io.quarkus.arc.Arc;
import io.quarkus.runtime.annotations.Recorder;

/** Suppliers of the LangChain4j beans of provider {@code memit}; they only look up the served model. */
@Recorder
public class MemitChatModelRecorder {

    public Supplier<ChatModel> chatModel() {
        return () -> new MemitChatModel(Arc.container().instance(ServedModel.class).get());
    }

    public Supplier<StreamingChatModel> streamingChatModel() {
        return () -> new MemitStreamingChatModel(Arc.container().instance(ServedModel.class).get(),
                Arc.container().instance(StreamingExecutor.class).get());
    }
}
