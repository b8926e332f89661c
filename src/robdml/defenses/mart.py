"""MART (Wang et al., "Improving Adversarial Robustness Requires Revisiting Misclassified
Examples", ICLR 2020) adapted to DML: the adversary maximises the Proxy Anchor loss; training
minimises the adversarial Proxy Anchor loss + beta x KL(clean || adversarial) of the
proxy-softmax class distributions, each sample weighted by 1 - p(true class | clean): samples
the clean embedding already places badly get the strongest consistency push.

MART's boosted cross-entropy (CE + a margin against the most likely wrong class) becomes the
Proxy Anchor loss itself, whose negative term already repels the closest wrong proxies."""

from robdml.defenses.base import Defense, kl_divergence, proxy_log_probabilities


class MART(Defense):
    def loss(self, step, images, labels, mask):
        member, pal = step.members[0], step.pal_losses[0]
        scale = self.params["softmax_scale"]
        adversarial = step.craft(lambda x: pal(member(x), labels), images, self.params["attack"])
        adversarial_embeddings = member(adversarial)
        clean_log_p = proxy_log_probabilities(member(images), pal, scale)
        adversarial_log_p = proxy_log_probabilities(adversarial_embeddings, pal, scale)
        true_class_p = clean_log_p.gather(1, labels[:, None]).squeeze(1).exp()
        weighted_kl = kl_divergence(clean_log_p, adversarial_log_p) * (1 - true_class_p)
        return pal(adversarial_embeddings, labels) + self.params["beta"] * weighted_kl.mean()
