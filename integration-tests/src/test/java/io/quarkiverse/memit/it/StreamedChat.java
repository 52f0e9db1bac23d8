package io.quarkiverse.memit.it;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;

/** Keeps what a streaming chat model hands over: the pieces, then the complete response or the error. */
final class StreamedChat implements StreamingChatResponseHandler {

    final List<String> pieces = new CopyOnWriteArrayList<>();
    private final CompletableFuture<ChatResponse> done = new CompletableFuture<>();

    @Override
    public void onPartialResponse(String piece) {
        pieces.add(piece);
    }

    @Override
    public void onCompleteResponse(ChatResponse response) {
        done.complete(response);
    }

    @Override
    public void onError(Throwable error) {
        done.completeExceptionally(error);
    }

    /** The complete response, once it has come (at most two minutes). */
    ChatResponse response() throws Exception {
        return done.get(2, TimeUnit.MINUTES);
    }
}
