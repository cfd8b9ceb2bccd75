"""Generation, gold-judge evaluation of policies, reports."""
