package io.quarkiverse.memit.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URL;
import java.util.List;

import org.junit.jupiter.api.Test;

import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.openai.OpenAiChatModel;
import dev.langchain4j.model.openai.OpenAiLanguageModel;
import dev.langchain4j.model.openai.OpenAiStreamingChatModel;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.model.output.Response;
import io.quarkiverse.memit.engine.generate.Completion;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;

/** LangChain4j's OpenAI models, pointed at the running application's {@code /v1}, get the served model's text. */
@QuarkusTest
class OpenAiClientTest {

    private static final String PROMPT = "The mother tongue of Danielle Darrieux is";

    private final ReferenceModel reference = ReferenceModel.shared();

    @TestHTTPResource("/v1")
    URL v1;

    private static FinishReason reason(Completion c) {
        return c.finishReason() == Completion.FinishReason.STOP ? FinishReason.STOP : FinishReason.LENGTH;
    }

    private OpenAiChatModel.OpenAiChatModelBuilder chat() {
        return OpenAiChatModel.builder().baseUrl(v1.toString()).apiKey("none").modelName("gptj").temperature(0.0);
    }

    @Test
    void chatModelGetsTheServedModelsAnswer() {
        Completion expected = reference.generator.complete(PROMPT, GenerationOptions.greedy(10));
        ChatResponse response = chat().maxTokens(10).build().chat(UserMessage.from(PROMPT));
        assertEquals(expected.text().stripLeading(), response.aiMessage().text());
        assertEquals(reason(expected), response.finishReason());
        assertEquals(expected.promptTokens(), response.tokenUsage().inputTokenCount());
        assertEquals(expected.tokens().length, response.tokenUsage().outputTokenCount());
        assertEquals("gptj", response.modelName());
    }

    @Test
    void aConversationStopsBeforeTheNextUserTurn() {
        String transcript = "Answer briefly.\n\nUser: Hello\nAssistant: Hi\nUser: " + PROMPT + "\nAssistant:";
        Completion expected = reference.generator.complete(transcript,
                GenerationOptions.greedy(20).withStop(List.of("\nUser:")));
        ChatResponse response = chat().maxTokens(20).build().chat(SystemMessage.from("Answer briefly."),
                UserMessage.from("Hello"), AiMessage.from("Hi"), UserMessage.from(PROMPT));
        assertEquals(expected.text().stripLeading(), response.aiMessage().text());
    }

    @Test
    void streamingChatModelReceivesThePiecesOfTheAnswer() throws Exception {
        Completion expected = reference.generator.complete(PROMPT, GenerationOptions.greedy(12));
        StreamedChat streamed = new StreamedChat();
        OpenAiStreamingChatModel.builder().baseUrl(v1.toString()).apiKey("none").modelName("gptj").temperature(0.0)
                .maxTokens(12).build().chat(PROMPT, streamed);
        List<String> pieces = streamed.pieces;
        ChatResponse response = streamed.response();
        assertEquals(expected.text().stripLeading(), String.join("", pieces));
        assertEquals(expected.text().stripLeading(), response.aiMessage().text());
        assertTrue(pieces.size() > 1, "streamed in pieces: " + pieces);
        assertEquals(reason(expected), response.finishReason());
        assertEquals(expected.tokens().length, response.tokenUsage().outputTokenCount());
    }

    @Test
    void languageModelCompletesTheText() {
        Completion expected = reference.generator.complete(PROMPT, GenerationOptions.greedy(8));
        Response<String> response = OpenAiLanguageModel.builder().baseUrl(v1.toString()).apiKey("none")
                .modelName("gptj").temperature(0.0).build().generate(PROMPT);
        // the request names no max_tokens: the configured default (64) applies
        Completion configured = reference.generator.complete(PROMPT, GenerationOptions.greedy(64));
        assertEquals(configured.text(), response.content());
        assertTrue(response.content().startsWith(expected.text()));
    }

    @Test
    void aModelNotServedIsRefusedWithTheReason() {
        RuntimeException e = assertThrows(RuntimeException.class,
                () -> chat().modelName("gpt-4o").maxRetries(0).build().chat("Hello"));
        assertTrue(e.getMessage().contains("the model gpt-4o (this server serves gptj) is not served here"),
                e.getMessage());
    }
}
