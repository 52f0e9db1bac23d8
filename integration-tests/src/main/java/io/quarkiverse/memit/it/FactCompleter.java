package io.quarkiverse.memit.it;

import dev.langchain4j.service.UserMessage;
import io.quarkiverse.langchain4j.RegisterAiService;

/**
 * A LangChain4j AI service over the served model (application.properties selects the {@code memit} chat-model
 * provider): the model continues the text it is given.
 */
@RegisterAiService
public interface FactCompleter {

    /** "The mother tongue of Danielle Darrieux is" → "French." */
    String complete(@UserMessage String text);
}
