package io.quarkiverse.memit.engine.edit;

/**
 * How the optimisation of one rewrite's target z = h^L + δ went (Eq. 16), at its last evaluation of the loss.
 *
 * @param steps Adam steps applied to δ
 * @param converged whether it stopped early because the loss fell below
 *        {@value MemitHyperparams#EARLY_STOP_LOSS}
 * @param loss nll + kl + weightDecay
 * @param nll negative log-likelihood of the target's tokens, averaged over tokens and prompts
 * @param kl the weighted KL term (klFactor · KL) of the "{} is a" distribution
 * @param weightDecay the weighted penalty v_weight_decay · ‖δ‖ / ‖z₀‖²
 * @param targetProbability mean over the rewriting prompts of exp(−nll of the prompt): the target's geometric-mean
 *        token probability
 * @param deltaNorm ‖δ‖
 * @param initialNorm ‖z₀‖ = ‖h^L‖ at the fact token of the bare prompt
 */
public record TargetStats(int steps, boolean converged, double loss, double nll, double kl, double weightDecay,
        double targetProbability, double deltaNorm, double initialNorm) {

    @Override
    public String toString() {
        return String.format("%d steps%s, loss %.4f = %.4f + %.4f + %.4f, P(target) %.4f, |δ| %.3f of |z₀| %.3f", steps,
                converged ? " (converged)" : "", loss, nll, kl, weightDecay, targetProbability, deltaNorm, initialNorm);
    }
}
