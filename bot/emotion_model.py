"""A BERT encoder with a mean-pooling multi-label classification head, and an ensemble of them.

Sentence-embedding checkpoints such as all-MiniLM-L6-v2 were trained to be read by averaging their
token vectors, not through BERT's [CLS] pooler, so this head averages the non-padding tokens and
applies one linear layer. The stock ``BertForSequenceClassification`` reads [CLS] through a pooler
and does clearly worse on GoEmotions with this encoder.

``BertMeanPoolEnsembleForSequenceClassification`` holds several such classifiers (same encoder
architecture, same labels) and reads a message with each: a label's probability is the mean of the
members' probabilities. Its ``logits`` are the log-odds of that mean, so the sigmoid that
``pipeline`` applies to multi-label outputs gives the mean back.

This file imports only torch and transformers: ``save_pretrained`` copies it next to the weights
(``auto_map``), so ``transformers.pipeline("text-classification", model=folder,
trust_remote_code=True)`` loads a saved classifier without this project installed.
"""

import torch
from torch import nn
from transformers import BertModel, BertPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput


class BertMeanPoolForSequenceClassification(BertPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        dropout = getattr(config, "classifier_dropout", None)
        self.dropout = nn.Dropout(dropout if dropout is not None else config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        hidden = out.last_hidden_state
        if attention_mask is None:
            attention_mask = torch.ones(hidden.shape[:2], device=hidden.device, dtype=torch.long)
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        logits = self.classifier(self.dropout(pooled))
        loss = None
        if labels is not None:
            loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), labels.float())
        return SequenceClassifierOutput(loss=loss, logits=logits)


class BertMeanPoolEnsembleForSequenceClassification(BertPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        size = getattr(config, "ensemble_size", 0)
        if size < 1:
            raise ValueError("an ensemble config needs ensemble_size >= 1")
        self.members = nn.ModuleList(BertMeanPoolForSequenceClassification(config) for _ in range(size))
        self.post_init()

    @classmethod
    def from_members(cls, members):
        """An ensemble made of trained ``BertMeanPoolForSequenceClassification`` models (they become its members)."""
        first = members[0].config
        if first.problem_type != "multi_label_classification":
            raise ValueError("ensemble members must be multi-label classifiers (a sigmoid per label)")
        for m in members[1:]:
            if m.config.id2label != first.id2label:
                raise ValueError("ensemble members must predict the same labels in the same order")
            if (m.config.hidden_size, m.config.num_hidden_layers) != (first.hidden_size, first.num_hidden_layers):
                raise ValueError("ensemble members must share one encoder architecture")
        config = first.__class__.from_dict(first.to_dict())
        config.ensemble_size = len(members)
        config.architectures = [cls.__name__]
        with torch.device("meta"):
            model = cls(config)  # the structure only: no memory, no random initialisation
        for i, member in enumerate(members):  # the members themselves take their places, once they fit
            want = {k: v.shape for k, v in model.members[i].state_dict().items()}
            if {k: v.shape for k, v in member.state_dict().items()} != want:
                raise ValueError(f"ensemble member {i} does not have the weights of a mean-pooling classifier")
            model.members[i] = member
        return model

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        probs = torch.stack([torch.sigmoid(m(input_ids=input_ids, attention_mask=attention_mask,
                                             token_type_ids=token_type_ids).logits.float()) for m in self.members])
        mean = probs.mean(dim=0).clamp(1e-7, 1 - 1e-7)
        logits = torch.log(mean) - torch.log1p(-mean)
        loss = None
        if labels is not None:
            loss = nn.functional.binary_cross_entropy(mean, labels.float())
        return SequenceClassifierOutput(loss=loss, logits=logits)
