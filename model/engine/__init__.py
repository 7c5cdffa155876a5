"""The engine that runs the network: config, data loading, point supervision, training, checkpoint
loading and conversion, prediction I/O and evaluation."""
