package io.quarkiverse.memit.runtime.langchain4j;

import java.util.ArrayList;
import java.util.List;

import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.UnsupportedFeatureException;

/**
 * Turns chat messages into a prompt for a base (not instruction-tuned) language model, which continues text rather
 * than answers turns:
 * <ul>
 * <li>one user message, optionally after a system message, is the text to continue — "The mother tongue of Danielle
 * Darrieux is" gets " English" — with the system message, if any, as a preceding paragraph;</li>
 * <li>a conversation becomes a transcript ({@code User: …}, {@code Assistant: …}, one per line) ending in
 * {@code Assistant:}, and decoding stops where the model starts the next {@code User:} line.</li>
 * </ul>
 *
 * @param text the prompt
 * @param stop stop sequences the format needs (empty for a single message)
 */
public record ChatPrompt(String text, List<String> stop) {

    static final String USER = "User:";
    static final String ASSISTANT = "Assistant:";

    /**
     * @throws IllegalArgumentException if there are no messages
     * @throws UnsupportedFeatureException for a message other than system, user and AI text
     */
    public static ChatPrompt of(List<ChatMessage> messages) {
        if (messages == null || messages.isEmpty()) {
            throw new IllegalArgumentException("a chat request needs at least one message");
        }
        String system = null;
        List<ChatMessage> turns = new ArrayList<>();
        for (ChatMessage m : messages) {
            if (m instanceof SystemMessage s) {
                system = system == null ? s.text() : system + "\n" + s.text();
            } else if (m instanceof UserMessage || m instanceof AiMessage) {
                turns.add(m);
            } else {
                throw new UnsupportedFeatureException("a base model served by quarkus-memit takes system, user and AI "
                        + "messages only, not " + m.type());
            }
        }
        if (turns.size() == 1 && turns.get(0) instanceof UserMessage user) {
            String text = text(user);
            return new ChatPrompt(system == null ? text : system + "\n\n" + text, List.of());
        }
        StringBuilder transcript = new StringBuilder();
        if (system != null) {
            transcript.append(system).append("\n\n");
        }
        for (ChatMessage m : turns) {
            if (m instanceof UserMessage user) {
                transcript.append(USER).append(' ').append(text(user)).append('\n');
            } else {
                transcript.append(ASSISTANT).append(' ').append(((AiMessage) m).text()).append('\n');
            }
        }
        transcript.append(ASSISTANT);
        return new ChatPrompt(transcript.toString(), List.of("\n" + USER));
    }

    private static String text(UserMessage user) {
        if (!user.hasSingleText()) {
            throw new UnsupportedFeatureException("a base model served by quarkus-memit reads text only; the user "
                    + "message holds " + user.contents().size() + " contents");
        }
        return user.singleText();
    }
}
