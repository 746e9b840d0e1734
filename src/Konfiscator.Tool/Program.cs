using Konfiscator.Tool.Cli;

return await CommandLine.RunAsync(args);
