package io.quarkiverse.memit.runtime.langchain4j;

import java.util.List;

import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.model.output.TokenUsage;
import io.quarkiverse.memit.engine.generate.Completion;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkiverse.memit.engine.generate.TokenListener;
import io.quarkiverse.memit.runtime.ServedModel;

/**
 * The served model as a LangChain4j {@link ChatModel} (provider {@code memit}): messages become a base-model prompt
 * ({@link ChatPrompt}), the request's temperature, top-k, top-p, maximum output tokens and stop sequences apply, and
 * each request reads the weights of the generation current when it starts, whatever edits land meanwhile.
 */
public class MemitChatModel implements ChatModel {

    private final ServedModel model;

    public MemitChatModel(ServedModel model) {
        this.model = model;
    }

    @Override
    public ChatResponse doChat(ChatRequest request) {
        return complete(model, request, TokenListener.NONE);
    }

    static ChatResponse complete(ServedModel model, ChatRequest request, TokenListener listener) {
        ChatPrompt prompt = ChatPrompt.of(request.messages());
        GenerationOptions options = ChatOptions.of(request, model.defaults(), prompt.stop());
        Completion c = model.generate(List.of(prompt.text()), options, listener).get(0);
        return ChatResponse.builder()
                .aiMessage(AiMessage.from(c.text().stripLeading()))
                .modelName(model.modelName())
                .finishReason(c.finishReason() == Completion.FinishReason.STOP ? FinishReason.STOP : FinishReason.LENGTH)
                .tokenUsage(new TokenUsage(c.promptTokens(), c.tokens().length))
                .build();
    }
}
