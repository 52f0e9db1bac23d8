package io.quarkiverse.memit.runtime.langchain4j;

import java.util.concurrent.Executor;

import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import io.quarkiverse.memit.runtime.ServedModel;

/**
 * The served model as a LangChain4j {@link StreamingChatModel}: as {@link MemitChatModel}, with the text handed to
 * {@link StreamingChatResponseHandler#onPartialResponse(String)} as it is decoded. Decoding runs on the given executor,
 * never on the caller's (possibly I/O) thread.
 */
public class MemitStreamingChatModel implements StreamingChatModel {

    private final ServedModel model;
    private final Executor executor;

    public MemitStreamingChatModel(ServedModel model, Executor executor) {
        this.model = model;
        this.executor = executor;
    }

    @Override
    public void doChat(ChatRequest request, StreamingChatResponseHandler handler) {
        executor.execute(() -> {
            try {
                // the answer's text is the completion without its leading whitespace: so are the pieces
                boolean[] started = { false };
                handler.onCompleteResponse(MemitChatModel.complete(model, request, (row, text) -> {
                    String piece = started[0] ? text : text.stripLeading();
                    if (!piece.isEmpty()) {
                        started[0] = true;
                        handler.onPartialResponse(piece);
                    }
                }));
            } catch (RuntimeException e) {
                handler.onError(e);
            }
        });
    }
}
