package io.quarkiverse.memit.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import jakarta.inject.Inject;

import org.junit.jupiter.api.Test;

import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.FinishReason;
import io.quarkiverse.memit.engine.generate.Completion;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkus.test.junit.QuarkusTest;

@QuarkusTest
class ChatModelTest {

    private static final String PROMPT = "The mother tongue of Danielle Darrieux is";

    private final ReferenceModel reference = ReferenceModel.shared();

    @Inject
    ChatModel chatModel;

    @Inject
    StreamingChatModel streamingChatModel;

    @Inject
    FactCompleter completer;


    @Test
    void aiServiceCompletesTheTextWithTheServedModel() {
        // quarkus.memit.generation.*: 64 tokens, greedy
        Completion expected = reference.generator.complete(PROMPT, GenerationOptions.greedy(64));
        assertEquals(expected.text().stripLeading(), completer.complete(PROMPT));
    }

    @Test
    void requestParametersReachTheDecoder() {
        Completion expected = reference.generator.complete(PROMPT, GenerationOptions.greedy(1));
        ChatResponse response = chatModel.chat(ChatRequest.builder().messages(UserMessage.from(PROMPT)).maxOutputTokens(1)
                .temperature(0.0).build());
        assertEquals(expected.text().stripLeading(), response.aiMessage().text());
        assertEquals(1, response.tokenUsage().outputTokenCount());
        assertEquals(expected.promptTokens(), response.tokenUsage().inputTokenCount());
        assertEquals(FinishReason.LENGTH, response.finishReason());
        assertEquals("gptj", response.modelName());
    }

    @Test
    void conversationBecomesATranscriptThatStopsBeforeTheNextUserTurn() {
        String transcript = "Answer briefly.\n\nUser: Hello\nAssistant: Hi\nUser: " + PROMPT + "\nAssistant:";
        Completion expected = reference.generator.complete(transcript,
                GenerationOptions.greedy(20).withStop(List.of("\nUser:")));
        ChatResponse response = chatModel.chat(ChatRequest.builder().messages(SystemMessage.from("Answer briefly."),
                UserMessage.from("Hello"), AiMessage.from("Hi"), UserMessage.from(PROMPT)).maxOutputTokens(20).build());
        assertEquals(expected.text().stripLeading(), response.aiMessage().text());
    }

    @Test
    void streamedPiecesMakeTheCompleteAnswer() throws Exception {
        StreamedChat streamed = new StreamedChat();
        streamingChatModel.chat(ChatRequest.builder().messages(UserMessage.from(PROMPT)).maxOutputTokens(12).build(),
                streamed);
        List<String> pieces = streamed.pieces;
        ChatResponse response = streamed.response();
        assertTrue(pieces.size() > 1, "pieces: " + pieces);
        assertEquals(response.aiMessage().text(), String.join("", pieces));
    }

    @Test
    void toolMessagesAreRefusedWithAReason() {
        UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                () -> chatModel.chat(UserMessage.from("x"), ToolExecutionResultMessage.from("id", "tool", "result")));
        assertTrue(e.getMessage().contains("TOOL_EXECUTION_RESULT"), e.getMessage());
    }
}
